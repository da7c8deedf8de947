"""Flicker against the truth: CDC and PSNR of colorized clips with ground-truth colour twins.

Clips come from ``tools/make_flicker_clips.py`` (made in a temporary folder from
``../shared/data``): the bundled demo clip with its RGB twin, and registered EPFL scenes moved
by a pan, a zoom, a rotation and a moving occluder, each with its twin. Each clip's NIR is
colorized three ways, with the shipped CPU model:

- off: every frame on its own;
- in place: chroma averaged where the NIR did not change (the smoothing before optical flow,
  with its settings then: alpha 0.6, motion threshold 0.05);
- flow: colour averaged along the NIR's optical flow, luma included (``engine.temporal`` now).

For each: CDC of the output and of the twin (scene cuts left out), the excess CDC (output
minus twin: the flicker the colorizer adds), the mean per-frame PSNR against the twin (a
smoothing that smears motion loses it), and the colorizer's time per frame (rounds
alternated, the ratio to off). Writes the ``flicker`` section of RESULTS.md.

    python benchmarks/flicker.py [--rounds 2]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from nirstream.core.assets import demo_clip
from nirstream.core.metrics import CDCMeter, psnr
from nirstream.stream.colorizer import Colorizer, ColorizerConfig, TemporalConfig
from nirstream.core.models import create_model
from nirstream.stream.sources import VideoSource

from results import load, update_section

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from make_flicker_clips import make_demo_twin, make_pair_clips  # noqa: E402

CLIPS = [  # held-out scenes (never trained on), one per motion
    ("street_0005", "pan", "slow"),
    ("urban_0003", "zoom", "fast"),
    ("oldbuilding_0005", "rotate", "slow"),
    ("street_0011", "occluder", "fast"),
]
MODES = {
    "off": TemporalConfig(enabled=False),
    "in place": TemporalConfig(enabled=True, flow=False, luma=False, alpha=0.6, motion_threshold=0.05),
    "flow": TemporalConfig(enabled=True),
}
CUT = 30.0  # mean |NIR change| (8-bit) above which two frames are a cut, as the smoother's default 0.1 is


def read(path: Path, gray: bool) -> list[np.ndarray]:
    if gray:
        with VideoSource(path) as source:
            return [frame.nir for frame in source]
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def cuts_of(nirs: list[np.ndarray]) -> set[int]:
    return {i for i in range(1, len(nirs)) if np.abs(nirs[i].astype(np.int16) - nirs[i - 1]).mean() > CUT}


def score(frames: list[np.ndarray], truth: list[np.ndarray], cuts: set[int]) -> dict[str, float]:
    out, true = CDCMeter(), CDCMeter()
    for index, (rgb, rgb_true) in enumerate(zip(frames, truth)):
        out.add(rgb, cut=index in cuts)
        true.add(rgb_true, cut=index in cuts)
    to_tensor = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return {
        "cdc": out.value, "truth cdc": true.value, "excess": out.value - true.value,
        "psnr": float(psnr(to_tensor(frames), to_tensor(truth)).mean()),
    }


def colorize(model: torch.nn.Module, mode: TemporalConfig, nirs: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """The clip's colorized frames and the seconds it took (a fresh colorizer: no state carried over)."""
    from nirstream.stream.frame import Frame

    colorizer = Colorizer(model, ColorizerConfig(device="cpu", precision="fp32", warmup=False, temporal=mode))
    colorizer.colorize(Frame(0, None, 0.0, nirs[0]))  # first-call costs out of the timing
    if colorizer._smoother is not None:
        colorizer._smoother.reset()
    start = time.perf_counter()
    frames = [colorizer.colorize(Frame(i, None, 0.0, nir)).rgb for i, nir in enumerate(nirs)]
    return frames, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds, modes alternated")
    args = parser.parse_args()
    model = create_model()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        clips = [("demo clip (3 shots, cuts left out)", demo_clip(), make_demo_twin(Path(folder)))]
        clips += [(f"{pair} {motion} {speed}", *make_pair_clips(pair, motion, speed, Path(folder))) for pair, motion, speed in CLIPS]
        for name, nir_clip, twin in clips:
            nirs, truth = read(nir_clip, gray=True), read(twin, gray=False)
            cuts = cuts_of(nirs)
            seconds = {mode: [] for mode in MODES}
            outputs = {}
            for _ in range(args.rounds):
                for mode, temporal in MODES.items():
                    outputs[mode], spent = colorize(model, temporal, nirs)
                    seconds[mode].append(spent)
            figures = {mode: score(outputs[mode], truth, cuts) for mode in MODES}
            for mode in MODES:
                figures[mode]["time"] = statistics.median(seconds[mode]) / statistics.median(seconds["off"])
            rows.append((name, len(nirs), figures))
            print(name, {m: {k: round(v, 5) for k, v in f.items()} for m, f in figures.items()}, flush=True)

    lines = [
        f"Shipped CPU model, whole frames, {args.rounds} timing rounds alternated; load before: {load()}.",
        "Excess CDC = CDC(output) - CDC(ground-truth twin); its fall is against smoothing off.",
        "",
        "| clip | frames | twin CDC | smoothing | CDC | excess CDC | excess fall | PSNR vs twin dB | time vs off |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, count, figures in rows:
        for mode, f in figures.items():
            fall = 1 - f["excess"] / figures["off"]["excess"]
            lines.append(
                f"| {name} | {count} | {f['truth cdc']:.5f} | {mode} | {f['cdc']:.5f} | {f['excess']:.5f} | "
                f"{'' if mode == 'off' else f'{fall:.0%}'} | {f['psnr']:.2f} | {f['time']:.2f}x |"
            )
    update_section("flicker", "Flicker against the truth: CDC with and without chroma smoothing (benchmarks/flicker.py)",
                   "\n".join(lines))


if __name__ == "__main__":
    main()
