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
from nirstream.core.models.interface import EDGE_MARGIN
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
    first = _timed(model, nir)
    if first > SLOW_S * 1e3:
        return first, 1
    _timed(model, nir)
    return statistics.median(_timed(model, nir) for _ in range(runs)), runs


def alternated_latency_ms(models: dict[str, nn.Module], size: tuple[int, int], runs: int) -> dict[str, float]:
    """Median ms per batch-1 forward of each model, timed in turn (one run of each per round),
    so that a change in the machine's load falls on every model alike: a side-by-side ratio."""
    nir = torch.rand(1, 1, *size)
    times: dict[str, list[float]] = {name: [] for name in models}
    for name, model in models.items():  # warm-up
        _timed(model, nir)
    for _ in range(runs):
        for name, model in models.items():
            times[name].append(_timed(model, nir))
    return {name: statistics.median(values) for name, values in times.items()}


def _timed(model: nn.Module, nir: torch.Tensor) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        model(nir)
        return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=bundled_names("models"),
                        help="bundled model names or model YAML files (default: every bundled config)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size (median reported)")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=sorted({1, torch.get_num_threads()}),
        help="intra-op thread counts to time with (default: 1 and torch's default)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)

    models = {name: build_model(load_model_config(name)).eval() for name in args.configs}
    counts = {name: (f / 1e9 for f in forward_flops(model, *TILE)) for name, model in models.items()}
    counts = {name: tuple(values) for name, values in counts.items()}
    times: dict[str, dict[int, tuple[str, str]]] = {name: {} for name in models}
    for threads in sorted(args.threads, reverse=True):
        torch.set_num_threads(threads)
        cpu_sized = {}
        for name, model in models.items():  # a GPU-sized config: one tile with the most threads says enough
            first = _timed(model, torch.rand(1, 1, *TILE))
            if first > SLOW_S * 1e3:
                times[name].setdefault(threads, (f"{first:.0f} (1 run)", "not timed"))
            else:
                cpu_sized[name] = model
        tiles = alternated_latency_ms(cpu_sized, TILE, args.runs)
        frames = alternated_latency_ms(cpu_sized, FRAME, args.runs)
        for name in cpu_sized:
            times[name][threads] = (f"{tiles[name]:.0f}", f"{frames[name]:.0f}")
    for name in models:
        params = sum(p.numel() for p in models[name].parameters()) / 1e6
        counted, scan = counts[name]
        timing = "  ".join(f"{t} thr: {tile} ms/tile, {frame} ms/frame" for t, (tile, frame) in times[name].items())
        print(f"{name:18s} {params:6.2f}M params  {counted:7.2f} GFLOPs/tile (+{scan:.3f} scan est.)  {timing}")

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    header = "| config | params | GFLOPs / 256² tile (conv + matmul) | scan GFLOPs / tile (est.) |"
    rule = "| --- | ---: | ---: | ---: |"
    for threads in args.threads:
        header += f" ms / 256² tile, {threads} thr | ms / 640×512 frame, {threads} thr |"
        rule += " ---: | ---: |"
    lines = [header, rule]
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        counted, scan = counts[name]
        line = f"| {name} | {params:.2f}M | {counted:.2f} | {scan:.3f} |"
        for threads in args.threads:
            tile, frame = times[name].get(threads, ("–", "–"))
            line += f" {tile} | {frame} |"
        lines.append(line)
    body = "\n".join(lines) + (
        f"\n\nCPU wall time, batch 1, fp32, `torch.inference_mode`, chunked scan; the configs are timed "
        f"in turn, one forward of each per round, {args.runs} rounds after a warm-up, and each "
        f"figure is a median: ratios between rows are side by side. A config whose first tile takes "
        f"over {SLOW_S:.0f} s (a GPU config) is timed once, on a tile, with the most threads. Load "
        f"average at the end of the run: {load}. FLOPs from "
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
