"""Recorded drives as a source: a mono8 MCAP bag against the same frames in a lossless video.

Three measurements, each side by side in one run, alternated:

1. reading: every frame of an N-frame 640x512 drive (camera topic plus a 100 Hz IMU) through
   ``open_source``, from the bag and from an FFV1 video of the same frames;
2. colorizing: the first K frames of each through the shipped model into the null sink
   (the pipeline ``nirstream run`` uses), frames per second;
3. memory: the peak resident memory of a process reading an N-frame bag and a 4N-frame bag
   to the end (reading must stream: the larger bag must not need more memory).

    python benchmarks/bag_source.py                   # N = 1000, K = 60
    python benchmarks/bag_source.py --frames 200 --colorize 20 --rounds 1 --no-write   # a quick look

Writes the ``bag_source`` section of RESULTS.md.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from nirstream.core.assets import demo_clip
from nirstream.stream.colorizer import Colorizer
from nirstream.stream.config import RunConfig
from nirstream.stream.pipeline import Pipeline
from nirstream.core.models import create_model
from nirstream.stream.sinks import NullSink
from nirstream.stream.sources import open_source

from results import load, update_section

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tools"))
from make_drive_bag import video_frames, write_drive_bag  # noqa: E402

SIZE = (640, 512)
PEAK_MEMORY = """
import resource, sys
from nirstream.stream.sources import open_source
with open_source(sys.argv[1]) as source:
    count = sum(1 for _ in source)
print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def drive_frames(count: int) -> list[np.ndarray]:
    """``count`` 640x512 frames: the demo clip's, scaled and repeated."""
    clip = [cv2.resize(frame, SIZE, interpolation=cv2.INTER_LINEAR) for frame in video_frames(demo_clip(), None)]
    return [clip[i % len(clip)] for i in range(count)]


def write_lossless(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "gray"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="gray")))
        container.mux(stream.encode())
    return path


def read_seconds(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    with open_source(str(path)) as source:
        count = sum(1 for _ in source)
    return time.perf_counter() - started, count


def colorize_fps(path: Path, colorizer: Colorizer, frames: int) -> float:
    with open_source(str(path)) as source:
        colorizer.start_input(source.info.sequence)
        summary = Pipeline(source, colorizer, [NullSink()], max_frames=frames).run()
    return summary.fps


def peak_memory_mb(path: Path) -> tuple[float, int]:
    result = subprocess.run([sys.executable, "-c", PEAK_MEMORY, str(path)], capture_output=True, text=True, check=True)
    count, kilobytes = result.stdout.split()
    return int(kilobytes) / 1024, int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000, help="frames of the drive (default: 1000)")
    parser.add_argument("--colorize", type=int, default=60, help="frames colorized per path and round (default: 60)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default: 3)")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave RESULTS.md alone")
    args = parser.parse_args()
    load_at_start = load()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        frames = drive_frames(args.frames)
        paths = {"bag (MCAP, mono8)": write_drive_bag(folder / "drive.mcap", frames),
                 "video (FFV1 .mkv)": write_lossless(folder / "drive.mkv", frames)}
        reads = {name: [] for name in paths}
        for round_index in range(args.rounds):
            for name in (list(paths) if round_index % 2 == 0 else list(paths)[::-1]):
                seconds, count = read_seconds(paths[name])
                assert count == args.frames, (name, count)
                reads[name].append(count / seconds)
        colorizer = Colorizer(create_model(device="auto"), RunConfig().engine)
        colorizer.warmup(SIZE[1], SIZE[0])
        colour = {name: [] for name in paths}
        for round_index in range(args.rounds):
            for name in (list(paths) if round_index % 2 == 0 else list(paths)[::-1]):
                colour[name].append(colorize_fps(paths[name], colorizer, args.colorize))
        small, _ = peak_memory_mb(paths["bag (MCAP, mono8)"])
        del frames
        write_drive_bag(folder / "long.mcap", drive_frames(4 * args.frames))
        large, count = peak_memory_mb(folder / "long.mcap")
        assert count == 4 * args.frames
    bag, video = (np.median(reads[name]) for name in paths)
    bag_colour, video_colour = (np.median(colour[name]) for name in paths)
    body = (
        f"Load at start: {load_at_start}. {args.frames} frames of 640x512 (the demo clip scaled and repeated), "
        f"a 100 Hz IMU topic beside them in the bag; medians of {args.rounds} alternated rounds.\n\n"
        "| path | read fps | colorized fps (colormamba-lite, null sink) |\n|---|---|---|\n"
        + "".join(f"| {name} | {np.median(reads[name]):.0f} | {np.median(colour[name]):.2f} |\n" for name in paths)
        + f"| bag / video | {bag / video:.2f}x | {bag_colour / video_colour:.2f}x |\n\n"
        f"Peak memory reading the whole bag: {small:.0f} MB for {args.frames} frames, {large:.0f} MB for "
        f"{4 * args.frames} frames ({large / small:.2f}x).\n"
    )
    print(body)
    if not args.no_write:
        update_section("bag_source", "Recorded drives: an MCAP bag against a lossless video", body)


if __name__ == "__main__":
    main()
