"""GPU-stage throughput and latency (``nirstream bench``), and half precision's accuracy on real frames.

Runs the bench matrix (models x backends x precisions x sizes) and, for each model and half
precision, the PSNR of its 8-bit output against fp32 on real NIR frames (the demo clip's
frames, scaled to each size). Writes the ``latency`` section of RESULTS.md and the JSON and
chart beside it in ``benchmarks/figures/``.

    python benchmarks/latency.py                                   # CPU: lite, eager vs compile, fp32 vs bf16
    python benchmarks/latency.py --models colormamba-base colormamba-paper --backends compile tensorrt \\
        --precisions fp16 --sizes 1920x1080 --frames 300            # the GPU targets
"""

import argparse
import os
from pathlib import Path

import torch

from nirstream.core.assets import demo_clip
from nirstream.core.metrics import psnr
from nirstream.stream.allocator import keep_freed_memory
from nirstream.stream.bench import bench_matrix, table, write_chart, write_json
from nirstream.stream.colorizer import Colorizer, ColorizerConfig
from nirstream.stream.export import check_frames
from nirstream.stream.frame import Frame
from nirstream.core.models import create_model

from results import update_section

FIGURES = Path(__file__).resolve().parent / "figures"


def half_accuracy(model: torch.nn.Module, precision: str, width: int, height: int, device: str) -> float:
    """Mean PSNR (dB) of ``precision`` output against fp32 on demo-clip frames scaled to ``width×height``."""
    frames = [(f[0, 0] * 255).round().to(torch.uint8).numpy() for f in check_frames(str(demo_clip()), width, height)]
    outputs = {}
    for p in ("fp32", precision):
        colorizer = Colorizer(model, ColorizerConfig(device=device, precision=p, warmup=False))
        outputs[p] = [torch.from_numpy(colorizer.colorize(Frame(i, None, 0.0, f)).rgb) for i, f in enumerate(frames)]
    scores = [psnr(_chw(h), _chw(f)) for h, f in zip(outputs[precision], outputs["fp32"])]
    return float(torch.cat(scores).mean())


def _chw(rgb: torch.Tensor) -> torch.Tensor:
    return rgb.permute(2, 0, 1).unsqueeze(0).float() / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["colormamba-lite"])
    parser.add_argument("--backends", nargs="+", default=["eager", "compile"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--sizes", nargs="+", default=["640x512", "1280x720"])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--tile-batch", default="4", help="a number, or auto")
    args = parser.parse_args()
    keep_freed_memory()  # as `nirstream bench` does
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    tile_batch = args.tile_batch if args.tile_batch == "auto" else int(args.tile_batch)
    engine = ColorizerConfig(device=args.device, tile_batch=tile_batch)
    models = {name: create_model(name, untrained=True) for name in args.models}

    results = bench_matrix(models, engine, args.backends, args.precisions, sizes, args.frames)
    accuracy = []
    for name, model in models.items():
        for precision in (p for p in args.precisions if p in ("fp16", "bf16")):
            for width, height in sizes:
                db = half_accuracy(model, precision, width, height, args.device)
                accuracy.append(f"| {name} | {precision} | {width}x{height} | {db:.1f} |")
                print(accuracy[-1], flush=True)

    write_json(results, FIGURES / "latency.json")
    write_chart(results, FIGURES / "latency.png")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    body = table(results) + (
        f"\n\n{args.frames} frames per row after a warm-up, synthetic scenes already in host memory, "
        f"timed to RGB in host memory. Floor = FLOPs per frame / the device's measured matrix rate in "
        f"that precision (on a CPU the fp32 rate for every precision, so bf16 can pass 100 %); 'of peak' = "
        f"the fraction of that rate the run reached. Load average at the "
        f"end: {load}. Chart: `benchmarks/figures/latency.png`, data: `benchmarks/figures/latency.json`.\n"
    )
    if accuracy:
        body += (
            "\nHalf precision against fp32 on real NIR frames (4 frames of the demo clip, scaled to the size; "
            "PSNR of the 8-bit output, 100 = identical):\n\n| model | precision | size | PSNR dB |\n"
            "| --- | --- | --- | ---: |\n" + "\n".join(accuracy) + "\n"
        )
    update_section("latency", "GPU-stage throughput and latency (benchmarks/latency.py)", body)


if __name__ == "__main__":
    main()
