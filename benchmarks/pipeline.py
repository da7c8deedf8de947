"""The threaded pipeline against a plain loop and against the colorizer alone, on real clips.

Three ways through the same frames with the same colorizer, source and sink classes:

- pipelined: :class:`~nirstream.stream.pipeline.Pipeline` as ``nirstream run`` runs it
  (decode, fan-out and encode in threads, the colorizer in the calling thread);
- sequential: a plain loop that decodes a frame, colorizes it, encodes it, then the next;
- colorizer only: the frames decoded into memory beforehand, colorized one after another
  (nothing to decode or encode: the ceiling the pipeline can approach).

Clips: the bundled demo (480x320) and the same frames scaled to 640x512 and 1280x720
(written to temporary files, with real content). Each round runs every way once, in turn, so
a change in the machine's load falls on all of them alike; ratios are taken within a round
and the table gives their medians over the rounds. Malloc is tuned as the ``nirstream``
command tunes it (``benchmarks/allocator.py`` measures that). Writes the ``pipeline``
section of RESULTS.md.

    python benchmarks/pipeline.py [--rounds 5] [--frames 40]
"""

import argparse
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import torch

from nirstream.core.assets import demo_clip
from nirstream.stream.allocator import keep_freed_memory
from nirstream.stream.colorizer import Colorizer, ColorizerConfig
from nirstream.stream.pipeline import Pipeline
from nirstream.core.models import create_model
from nirstream.stream.sinks import VideoSink
from nirstream.stream.sources import VideoSource

from results import load, update_section

WAYS = ("pipelined", "sequential", "colorizer only")
SIZES = {"480x320 demo": None, "640x512": (640, 512), "1280x720": (1280, 720)}


def scaled_clip(source: Path, out: Path, width: int, height: int, frames: int) -> Path:
    """The first ``frames`` frames of ``source`` scaled to ``width×height``, as near-lossless H.264."""
    with av.open(str(source)) as clip, av.open(str(out), "w") as scaled:
        rate = clip.streams.video[0].average_rate or Fraction(15)
        stream = scaled.add_stream("libx264", rate=rate, options={"crf": "12", "preset": "fast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index, frame in enumerate(clip.decode(video=0)):
            if index == frames:
                break
            rgb = cv2.resize(frame.to_ndarray(format="rgb24"), (width, height), interpolation=cv2.INTER_CUBIC)
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts = index
            scaled.mux(stream.encode(picture))
        scaled.mux(stream.encode())
    return out


def pipelined(colorizer: Colorizer, clip: Path, out: Path, frames: int) -> float:
    """fps of the Pipeline, as ``nirstream run`` runs it."""
    source, sink = VideoSource(clip), VideoSink(out, overwrite=True)
    start = time.perf_counter()
    summary = Pipeline(source, colorizer, [sink], max_frames=frames).run()
    return summary.written / (time.perf_counter() - start)


def sequential(colorizer: Colorizer, clip: Path, out: Path, frames: int, parts: dict[str, list[float]]) -> float:
    """fps of a plain loop; adds each frame's decode, colorize and encode ms to ``parts``."""
    sink = VideoSink(out, overwrite=True)
    start = time.perf_counter()
    with VideoSource(clip) as source:
        sink.open(source.info)
        frames_in, done = iter(source), 0
        for _ in range(frames):
            t0 = time.perf_counter()
            frame = next(frames_in, None)
            if frame is None:
                break
            t1 = time.perf_counter()
            colorized = colorizer.colorize(frame)
            t2 = time.perf_counter()
            sink.write(colorized)
            t3 = time.perf_counter()
            for part, seconds in (("decode", t1 - t0), ("colorize", t2 - t1), ("encode", t3 - t2)):
                parts[part].append(seconds * 1e3)
            done += 1
    sink.close()
    return done / (time.perf_counter() - start)


def colorizer_only(colorizer: Colorizer, clip: Path, frames: int) -> float:
    with VideoSource(clip) as source:
        decoded = [frame for _, frame in zip(range(frames), source)]
    start = time.perf_counter()
    for frame in decoded:
        colorizer.colorize(frame)
    return len(decoded) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=40, help="frames of each clip per run")
    args = parser.parse_args()
    keep_freed_memory()  # as the nirstream command does

    model = create_model()
    colorizer = Colorizer(model, ColorizerConfig(device="cpu"))
    tiled = Colorizer(model, ColorizerConfig(device="cpu", tile=640))  # the fixed tiles before engine.tile: auto
    load_before = load()
    rows, tile_rows = [], []
    with tempfile.TemporaryDirectory() as folder:
        for name, size in SIZES.items():
            clip = demo_clip() if size is None else scaled_clip(demo_clip(), Path(folder) / f"{name}.mp4", *size, args.frames)
            with VideoSource(clip) as probe:
                info = probe.info
            colorizer.warmup(info.height, info.width)
            fps = {way: [] for way in WAYS}
            parts = {"decode": [], "colorize": [], "encode": []}  # ms per frame in the plain loop
            out = Path(folder) / "out.mp4"
            for _ in range(args.rounds):
                fps["pipelined"].append(pipelined(colorizer, clip, out, args.frames))
                fps["sequential"].append(sequential(colorizer, clip, out, args.frames, parts))
                fps["colorizer only"].append(colorizer_only(colorizer, clip, args.frames))
            median = {way: statistics.median(values) for way, values in fps.items()}
            ratios = {base: statistics.median(a / b for a, b in zip(fps["pipelined"], fps[base]))
                      for base in ("sequential", "colorizer only")}
            rows.append((name, median, ratios, fps, {part: statistics.median(ms) for part, ms in parts.items()}))
            if max(info.width, info.height) > 640:  # where auto runs whole what 640-px tiles split
                tiled.warmup(info.height, info.width)
                runs = {"640-px tiles": [], "tile: auto": []}
                for _ in range(min(args.rounds, 3)):
                    runs["640-px tiles"].append(pipelined(tiled, clip, out, args.frames))
                    runs["tile: auto"].append(pipelined(colorizer, clip, out, args.frames))
                tile_rows.append((name, {k: statistics.median(v) for k, v in runs.items()},
                                  colorizer.tile_choice(info.height, info.width).reason))
            print(name, {way: f"{value:.2f}" for way, value in median.items()},
                  {key: f"{value:.2f}" for key, value in ratios.items()}, flush=True)

    lines = [
        f"torch threads {torch.get_num_threads()}, precision {colorizer.precision}, {args.frames} frames per run, "
        f"{args.rounds} rounds alternated; load before: {load_before}, after: {load()}. Ratios are medians of each "
        "round's ratio.",
        "",
        "| clip | pipelined fps | sequential fps | colorizer only fps | pipelined / sequential | pipelined / colorizer only "
        "| in the loop, ms per frame: decode / colorize / encode |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, median, ratios, _, ms in rows:
        lines.append(
            f"| {name} | {median['pipelined']:.2f} | {median['sequential']:.2f} | {median['colorizer only']:.2f} | "
            f"{ratios['sequential']:.2f}x | {ratios['colorizer only']:.2f}x | "
            f"{ms['decode']:.1f} / {ms['colorize']:.1f} / {ms['encode']:.1f} |"
        )
    for name, median, reason in tile_rows:
        lines += [
            "", f"{name} through the pipeline, fixed 640-px tiles against `engine.tile: auto` ({reason}):", "",
            "| clip | 640-px tiles fps | tile: auto fps | auto / tiles |", "|---|---|---|---|",
            f"| {name} | {median['640-px tiles']:.2f} | {median['tile: auto']:.2f} | "
            f"{median['tile: auto'] / median['640-px tiles']:.2f}x |",
        ]
    lines += ["", "Every run (fps): " + "; ".join(
        f"{name} {way} " + ", ".join(f"{v:.2f}" for v in values) for name, _, _, fps, _ in rows for way, values in fps.items()
    )]
    update_section("pipeline", "Pipelined run vs a plain loop vs the colorizer alone (benchmarks/pipeline.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
