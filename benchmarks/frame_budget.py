"""Frame budgets on this CPU: fps of the shipped CPU model through ``nirstream run`` at the sizes
NIR cameras deliver, beside the floor its FLOPs set at the machine's measured matrix rate.

Each size runs ``testsrc`` (a synthetic moving scene, no decoding) into the null sink with the
run's defaults (``engine.tile: auto``, ``precision: auto``, malloc tuned); the fps is frames
written over the run's wall time after a warm-up frame. The floor is the FLOPs the colorizer
spends per frame over the fp32 matmul rate measured here. Writes the ``frame_budget`` section
of RESULTS.md.

    python benchmarks/frame_budget.py [--frames 20]
"""

import argparse

import torch
from loguru import logger

from nirstream.stream.allocator import keep_freed_memory
from nirstream.stream.bench import frame_flops, measure_peak_tflops
from nirstream.stream.colorizer import Colorizer
from nirstream.stream.config import RunConfig
from nirstream.core.models import create_model
from nirstream.stream.run import run

from results import load, update_section

SIZES = ((640, 512), (1280, 720), (1920, 1080))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20)
    args = parser.parse_args()
    keep_freed_memory()  # as the nirstream command does
    logger.remove()  # the runs' own lines would bury the table
    choices = []  # what `precision: auto` chose, from the runs' log lines
    logger.add(lambda message: choices.append(message.record["message"]), level="INFO",
               filter=lambda record: record["message"].startswith("precision:"))
    peak = measure_peak_tflops(torch.device("cpu"), "fp32")
    colorizer = Colorizer(create_model(device="auto"), RunConfig().engine)
    lines = [
        f"Shipped CPU model, `precision: auto`, torch threads {torch.get_num_threads()}; measured fp32 matmul rate "
        f"{peak * 1e3:.0f} GFLOP/s; load before: {load()}",
        "",
        "| size | fps through `nirstream run` | ms per frame | GFLOPs per frame | floor ms (FLOPs / fp32 rate) | share of the fp32 rate |",
        "|---|---|---|---|---|---|",
    ]
    for width, height in SIZES:
        config = RunConfig(max_frames=args.frames)
        summary = run(f"testsrc:{width}x{height}", ["null"], config)[0]
        flops = frame_flops(colorizer, width, height)
        floor_ms = flops / (peak * 1e12) * 1e3
        lines.append(
            f"| {width}x{height} | {summary.fps:.2f} | {1e3 / summary.fps:.0f} | {flops / 1e9:.1f} | {floor_ms:.0f} | "
            f"{floor_ms * summary.fps / 1e3:.0%} |"
        )
        print(lines[-1], flush=True)
    lines += ["", "Precision chosen: " + ("; ".join(choices) if choices else "fp32 (no bf16 on this CPU)")]
    update_section("frame_budget", "Frame budgets of the CPU default through nirstream run (benchmarks/frame_budget.py)",
                   "\n".join(lines))


if __name__ == "__main__":
    main()
