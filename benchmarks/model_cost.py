"""Parameters, FLOPs and CPU latency of every bundled model config.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one forward. That
counter sees convolutions and matrix products only: the selective scan's elementwise recurrence, norms and activations are
not in it, so the scan's work is estimated separately from the shapes each SS2D layer scans.
Latency is the median wall time of batch-1 fp32 forwards under ``torch.inference_mode`` after
a warm-up, on the default (chunked) scan; the paper config is timed once, on a tile only.

    python benchmarks/model_cost.py [--runs 5] [--threads N] [--configs colormamba-lite ...]
"""

import argparse
import os
import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nirstream.core.config import bundled_names
from nirstream.core.models import build_model, load_model_config
from nirstream.core.models.ss2d import DIRECTIONS, SS2D

from results import update_section

TILE = (256, 256)
FRAME = (512, 640)  # height, width of a 640x512 frame
SCAN_FLOPS_PER_UPDATE = 7  # exp(dt*A), dt*u*B, h = a*h + b, y += C*h: about 7 per (channel, token, state)


def flops(model: nn.Module, size: tuple[int, int]) -> tuple[float, float]:
    """(counted GFLOPs, estimated scan GFLOPs) of one forward at ``size``."""
    updates = []

    def count(module: SS2D, args: tuple, _output: torch.Tensor) -> None:
        _, _, h, w = args[0].shape  # the scan sees the map plus its border of padding tokens
        updates.append(DIRECTIONS * module.d_inner * (h + 2) * (w + 2) * module.d_state)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, SS2D)]
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 1, *size))
    for hook in hooks:
        hook.remove()
    return counter.get_total_flops() / 1e9, sum(updates) * SCAN_FLOPS_PER_UPDATE / 1e9


def latency_ms(model: nn.Module, size: tuple[int, int], runs: int, warmup: int) -> float:
    """Median wall time of a batch-1 forward at ``size``, in milliseconds."""
    nir = torch.rand(1, 1, *size)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(nir)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=bundled_names("models"))
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size (median reported)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = []
    for name in args.configs:
        config = load_model_config(name)
        model = build_model(config).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        counted, scan = flops(model, TILE)
        slow = name.endswith("paper")
        tile = latency_ms(model, TILE, runs=1 if slow else args.runs, warmup=0 if slow else 2)
        frame = None if slow else latency_ms(model, FRAME, runs=args.runs, warmup=2)
        rows.append((name, params, counted, scan, tile, frame))
        frame_text = "skipped" if frame is None else f"{frame:.0f}"
        print(f"{name:18s} {params:7.2f}M params  {counted:7.2f} GFLOPs/tile (+{scan:.2f} scan est.)  "
              f"{tile:8.0f} ms/tile  {frame_text:>7s} ms/frame", flush=True)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "| config | params | GFLOPs / 256² tile (conv + matmul) | scan GFLOPs / tile (est.) "
        "| CPU ms / 256² tile | CPU ms / 640×512 frame |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, params, counted, scan, tile, frame in rows:
        frame_text = "not timed" if frame is None else f"{frame:.0f}"
        tile_text = f"{tile:.0f}" + (" (1 run)" if frame is None else "")
        lines.append(f"| {name} | {params:.2f}M | {counted:.2f} | {scan:.2f} | {tile_text} | {frame_text} |")
    body = "\n".join(lines) + (
        f"\n\nBatch 1, fp32, `torch.inference_mode`, chunked scan, {args.threads} thread(s), median of "
        f"{args.runs} runs after 2 warm-ups (the paper config: one tile run). Load average at the end: "
        f"{load}. FLOPs from `FlopCounterMode`, which counts convolutions and matrix products only; "
        f"the selective scan's elementwise recurrence is not in it and is estimated beside it at "
        f"{SCAN_FLOPS_PER_UPDATE} FLOPs per (channel, token, state) update.\n"
    )
    update_section("model_cost", "Model cost (benchmarks/model_cost.py)", body)


if __name__ == "__main__":
    main()
