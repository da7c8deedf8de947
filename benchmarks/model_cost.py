"""Parameters, FLOPs and CPU latency of every bundled model config.

FLOPs come from :func:`nirstream.core.models.cost.forward_flops`: convolutions and matrix
products counted, the selective scan's recurrence estimated from the shapes it scans.
Latency is the median wall time of batch-1 fp32 forwards under ``torch.inference_mode`` after
a warm-up, on the default (chunked) scan, with each thread count asked for; GPU-sized configs
(the base and paper ones take seconds per tile here) are timed once, on a tile only.

    python benchmarks/model_cost.py [--runs 5] [--threads 1 2] [--configs colormamba-lite ...]
"""

import argparse
import os
import statistics
import time

import torch
from torch import nn

from nirstream.core.config import bundled_names
from nirstream.core.models import build_model, load_model_config
from nirstream.core.models.colormamba import EDGE_MARGIN
from nirstream.core.models.cost import SCAN_FLOPS_PER_UPDATE, forward_flops

from results import update_section

TILE = (256 - 2 * EDGE_MARGIN,) * 2
"""A tile input the model pads to exactly 256×256 (its reflected edge margin): the cost of the
network on a 256² tile, which is how a tiler feeds it."""
FRAME = (512, 640)  # height, width of a 640x512 frame, padded inside as the model needs
SLOW_S = 3.0  # a first tile slower than this marks a GPU-sized config: time it once


def latency_ms(model: nn.Module, size: tuple[int, int], runs: int) -> tuple[float, int]:
    """(median wall ms, runs timed) of batch-1 forwards at ``size``.

    The first run doubles as warm-up; a model whose first run takes longer than ``SLOW_S``
    (a GPU-sized config on the CPU) is reported from that single run instead.
    """
    nir = torch.rand(1, 1, *size)
    with torch.inference_mode():
        start = time.perf_counter()
        model(nir)
        first = time.perf_counter() - start
        if first > SLOW_S:
            return first * 1e3, 1
        model(nir)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model(nir)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=bundled_names("models"))
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size (median reported)")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=sorted({1, torch.get_num_threads()}),
        help="intra-op thread counts to time with (default: 1 and torch's default)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)

    rows = []
    for name in args.configs:
        config = load_model_config(name)
        model = build_model(config).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        counted, scan = (f / 1e9 for f in forward_flops(model, *TILE))
        times: dict[int, tuple[str, str]] = {}
        for threads in sorted(args.threads, reverse=True):
            torch.set_num_threads(threads)
            tile, tile_runs = latency_ms(model, TILE, args.runs)
            if tile_runs == 1:  # a GPU-sized config: one tile with the most threads says enough
                times[threads] = (f"{tile:.0f} (1 run)", "not timed")
                break
            frame, frame_runs = latency_ms(model, FRAME, args.runs)
            times[threads] = (f"{tile:.0f}", f"{frame:.0f}" + (" (1 run)" if frame_runs == 1 else ""))
        rows.append((name, params, counted, scan, times))
        timing = "  ".join(f"{t} thr: {tile} ms/tile, {frame} ms/frame" for t, (tile, frame) in times.items())
        print(
            f"{name:18s} {params:6.2f}M params  {counted:7.2f} GFLOPs/tile (+{scan:.3f} scan est.)  {timing}",
            flush=True,
        )

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    header = "| config | params | GFLOPs / 256² tile (conv + matmul) | scan GFLOPs / tile (est.) |"
    rule = "| --- | ---: | ---: | ---: |"
    for threads in args.threads:
        header += f" ms / 256² tile, {threads} thr | ms / 640×512 frame, {threads} thr |"
        rule += " ---: | ---: |"
    lines = [header, rule]
    for name, params, counted, scan, times in rows:
        line = f"| {name} | {params:.2f}M | {counted:.2f} | {scan:.3f} |"
        for threads in args.threads:
            tile, frame = times.get(threads, ("–", "–"))
            line += f" {tile} | {frame} |"
        lines.append(line)
    body = "\n".join(lines) + (
        f"\n\nCPU wall time, batch 1, fp32, `torch.inference_mode`, chunked scan; median of {args.runs} "
        f"runs after a warm-up. A config whose first tile takes over {SLOW_S:.0f} s (a GPU config) is "
        f"timed once, on a tile, with the most threads. Load average at the end of the run: {load} "
        f"(the machine is shared: with other processes busy, multi-threaded runs of many small ops "
        f"stall at every thread barrier and can be far slower than one thread). FLOPs from "
        f"`FlopCounterMode`, which counts convolutions and matrix products only; the selective "
        f"scan's elementwise recurrence is not in it and is estimated beside it at "
        f"{SCAN_FLOPS_PER_UPDATE} FLOPs per (channel, token, state) update. A tile is a "
        f"{TILE[0]}×{TILE[1]} input, which the model pads by its {EDGE_MARGIN} px reflected edge "
        f"margin to a 256×256 network input; the 640×512 frame is padded likewise (to 672×544 "
        f"for a multiple of 32).\n"
    )
    update_section("model_cost", "Model cost (benchmarks/model_cost.py)", body)


if __name__ == "__main__":
    main()
