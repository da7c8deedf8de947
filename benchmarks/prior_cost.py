"""What the semantic prior costs a frame: the CPU default against the previous one (the
2026-11-30 ``colormamba-lite``: no prior, and the VSS blocks of that time), at 640x512,
natively and with the CPU held to AVX2.

Each way is a fresh process, the ways alternated round by round. A process builds the model
(the shipped file's, or the previous default's architecture from :data:`PREVIOUS_DEFAULT`
with the file's tensors where they fit: speed does not depend on the values of the weights),
colorizes a real frame (the demo clip's first, scaled to 640x512) through
:class:`~nirstream.stream.colorizer.Colorizer` with ``precision: auto`` and malloc tuned, as
``nirstream run`` does, and reports the median of its timed frames after a warm-up. "AVX2 only"
holds torch's kernels, oneDNN and MKL to AVX2 (as ``benchmarks/forward.py``); on a CPU without
AVX-512 it is the native run again. Writes the ``prior_cost`` section of RESULTS.md.

    python benchmarks/prior_cost.py [--weights W.safetensors] [--rounds 3] [--frames 8]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from forward import AVX2_ONLY
from results import cpu_features, load, update_section

PREVIOUS_DEFAULT = {
    "arch": "colormamba", "ngf": 48, "nfg": 24, "width_mults": [1, 2, 4, 8], "depths": [0, 0, 1, 1],
    "decoder_depths": [0, 0, 1], "conv_depths": [1, 1, 0, 0], "stem_stride": 4, "d_state": 1, "expand": 1.0,
    "mlp_ratio": 2.0, "attn_reduction": 4, "attn_window": 7, "spade_hidden": 32, "encoder": None,
}
"""The 2026-11-30 colormamba-lite's model config (the CPU default before the semantic prior), whole."""

WAYS = {
    "previous default (2026-11-30)": ({}, False),
    "shipped default": ({}, True),
    "AVX2 only, previous default (2026-11-30)": (AVX2_ONLY, False),
    "AVX2 only, shipped default": (AVX2_ONLY, True),
}
"""way: (ISA limits, the shipped default rather than the previous one)"""


def build(weights: Path, shipped: bool):
    """The file's model, or the previous default's architecture with the file's tensors where they fit."""
    import torch

    from nirstream.core.models import build_model
    from nirstream.core.weights import load_model

    saved = load_model(weights)
    if shipped:
        return saved.eval().requires_grad_(False).to(torch.float32)
    model = build_model(dict(PREVIOUS_DEFAULT))
    shapes = {key: value.shape for key, value in model.state_dict().items()}
    model.load_state_dict({k: v for k, v in saved.state_dict().items() if shapes.get(k) == v.shape}, strict=False)
    return model.eval().requires_grad_(False).to(torch.float32)


def one(weights: Path, shipped: bool, frames: int) -> dict:
    """Time the colorizer in this process: median ms per 640x512 frame, and the precision run."""
    import time

    import cv2
    from loguru import logger

    from nirstream.core.assets import demo_clip
    from nirstream.stream.allocator import keep_freed_memory

    keep_freed_memory()
    from nirstream.stream.colorizer import Colorizer, ColorizerConfig
    from nirstream.stream.sources import VideoSource

    logger.remove()
    with VideoSource(demo_clip()) as source:
        frame = next(iter(source))
    frame.nir = cv2.resize(frame.nir, (640, 512), interpolation=cv2.INTER_CUBIC)
    model = build(weights, shipped)
    colorizer = Colorizer(model, ColorizerConfig(device="cpu", precision="auto"))
    colorizer.warmup(512, 640)
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        colorizer.colorize(frame)
        times.append((time.perf_counter() - start) * 1e3)
    return {"ms": statistics.median(times), "precision": colorizer.precision}


def main() -> None:
    from nirstream.core.assets import shipped_weights

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=shipped_weights("colormamba-lite"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8, help="timed frames per process")
    parser.add_argument("--one", choices=("shipped", "previous"), help=argparse.SUPPRESS)  # a child's way
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.weights, args.one == "shipped", args.frames)))
        return

    load_before = load()
    ms = {way: [] for way in WAYS}
    chosen = {}
    for _ in range(args.rounds):
        for way, (isa, shipped) in WAYS.items():
            command = [sys.executable, __file__, "--weights", str(args.weights), "--frames", str(args.frames),
                       "--one", "shipped" if shipped else "previous"]
            result = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, **isa})
            measured = json.loads(result.stdout.strip().splitlines()[-1])
            ms[way].append(measured["ms"])
            chosen[way] = measured["precision"]
        print({way: f"{values[-1]:.1f}" for way, values in ms.items()}, flush=True)

    def ratio(way: str) -> float:
        base = way.replace("shipped default", "previous default (2026-11-30)")
        return statistics.median(w / b for w, b in zip(ms[way], ms[base]))

    lines = [
        f"`{args.weights.name}`, one 640x512 demo frame through the colorizer, {args.frames} timed frames per "
        f"process after a warm-up, {args.rounds} rounds alternated, torch's default threads; CPU flags: "
        f"{cpu_features()}; load before: {load_before}, after: {load()}. Ratio: the median of each round's "
        "frame time over the same round's of the previous default, same ISA. Both U-Nets pad a 640x512 frame "
        "to 672x544; only the prior's encoder input is extended to 704x576, its stride-64 grid.",
        "",
        "| way | precision run | ms per frame (median of rounds) | frame time ratio |",
        "|---|---|---|---|",
    ]
    for way in WAYS:
        lines.append(f"| {way} | {chosen[way]} | {statistics.median(ms[way]):.1f} | {ratio(way):.2f}x |")
    lines += ["", "Every run (ms): " + "; ".join(f"{way} " + ", ".join(f"{v:.1f}" for v in values) for way, values in ms.items())]
    update_section("prior_cost", "What the semantic prior costs a 640x512 frame: the CPU default against the previous one (benchmarks/prior_cost.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
