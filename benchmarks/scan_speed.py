"""Chunked versus reference selective scan on the CPU, measured side by side.

The issue's bar: ``chunked`` at least 5x faster than ``reference`` at sequence length 16384,
d_inner 128, d_state 16. Runs alternate between the backends so that machine noise hits both
alike; the ratio of medians is the figure to quote.

    python benchmarks/scan_speed.py [--repeats 5] [--length 16384]
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from nirstream.core.ops import selective_scan

from results import update_section


def inputs(length: int, dim: int, state: int, grad: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    t = dict(
        u=torch.randn(1, dim, length, generator=g),
        delta=F.softplus(torch.randn(1, dim, length, generator=g) - 2),
        A=-torch.arange(1, state + 1, dtype=torch.float32).repeat(dim, 1),
        B=torch.randn(1, state, length, generator=g),
        C=torch.randn(1, state, length, generator=g),
        D=torch.ones(dim),
    )
    return {k: v.requires_grad_(grad) for k, v in t.items()}


def time_once(backend: str, data: dict, backward: bool) -> float:
    start = time.perf_counter()
    if backward:
        selective_scan(**data, backend=backend).sum().backward()
    else:
        with torch.no_grad():
            selective_scan(**data, backend=backend)
    return time.perf_counter() - start


def measure(length: int, dim: int, state: int, repeats: int, backward: bool) -> dict[str, float]:
    data = inputs(length, dim, state, backward)
    times = {"reference": [], "chunked": []}
    for backend in times:  # warm-up
        time_once(backend, data, backward)
    for _ in range(repeats):
        for backend in times:
            times[backend].append(time_once(backend, data, backward))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=16384)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for label, length, backward in (
        ("forward", args.length, False),
        ("forward + backward", args.length // 8, True),
    ):
        med = measure(length, args.dim, args.state, args.repeats, backward)
        ratio = med["reference"] / med["chunked"]
        rows.append(
            f"| {label} | {length} | {med['reference'] * 1e3:.0f} | {med['chunked'] * 1e3:.0f} | {ratio:.1f}x |"
        )
        print(rows[-1])
    body = (
        f"d_inner {args.dim}, d_state {args.state}, batch 1, fp32, "
        f"median of {args.repeats} alternating runs after one warm-up.\n\n"
        "| pass | length | reference ms | chunked ms | speed-up |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    update_section("scan_speed", "Selective scan: chunked vs reference (CPU)", body)


if __name__ == "__main__":
    main()
