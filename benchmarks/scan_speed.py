"""Selective-scan backends measured side by side: chunked vs reference on the CPU, the fast kernels on CUDA.

The CPU bar: ``chunked`` at least 5x faster than ``reference`` at sequence length 16384,
d_inner 128, d_state 16. On CUDA the default compares chunked, triton and mamba_ssm (those that
import). Runs alternate between the backends so that machine noise hits them alike; the ratio
of medians to the first backend is the figure to quote.

    python benchmarks/scan_speed.py [--repeats 5] [--length 16384]
    python benchmarks/scan_speed.py --device cuda --length 262144 --dim 384
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from nirstream.core.ops import mamba_ssm_available, selective_scan
from nirstream.core.ops.scan_triton import triton_available

from results import update_section


def inputs(length: int, dim: int, state: int, grad: bool, device: str) -> dict:
    g = torch.Generator().manual_seed(0)
    t = dict(
        u=torch.randn(1, dim, length, generator=g),
        delta=F.softplus(torch.randn(1, dim, length, generator=g) - 2),
        A=-torch.arange(1, state + 1, dtype=torch.float32).repeat(dim, 1),
        B=torch.randn(1, state, length, generator=g),
        C=torch.randn(1, state, length, generator=g),
        D=torch.ones(dim),
    )
    return {k: v.to(device).requires_grad_(grad) for k, v in t.items()}


def time_once(backend: str, data: dict, backward: bool) -> float:
    cuda = data["u"].is_cuda
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    if backward:
        selective_scan(**data, backend=backend).sum().backward()
    else:
        with torch.no_grad():
            selective_scan(**data, backend=backend)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(length: int, dim: int, state: int, repeats: int, backward: bool, backends: list[str], device: str) -> dict[str, float]:
    data = inputs(length, dim, state, backward, device)
    times = {backend: [] for backend in backends}
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
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--backends", nargs="+", help="default: reference chunked (CPU); chunked triton mamba_ssm (CUDA)")
    args = parser.parse_args()
    backends = args.backends or (
        ["reference", "chunked"] if args.device == "cpu"
        else ["chunked"] + ["triton"] * triton_available() + ["mamba_ssm"] * mamba_ssm_available()
    )
    rows = []
    for label, length, backward in (
        ("forward", args.length, False),
        ("forward + backward", args.length // 8, True),
    ):
        med = measure(length, args.dim, args.state, args.repeats, backward, backends, args.device)
        cells = " | ".join(f"{med[b] * 1e3:.1f}" for b in backends)
        ratios = " | ".join(f"{med[backends[0]] / med[b]:.1f}x" for b in backends[1:])
        rows.append(f"| {label} | {length} | {cells} | {ratios} |")
        print(rows[-1])
    header = (
        "| pass | length | " + " | ".join(f"{b} ms" for b in backends) + " | "
        + " | ".join(f"{b} speed-up" for b in backends[1:]) + " |\n"
        + "|---" * (2 + 2 * len(backends) - 1) + "|"
    )
    body = (
        f"d_inner {args.dim}, d_state {args.state}, batch 1, fp32, on {args.device}, "
        f"median of {args.repeats} alternating runs after one warm-up; speed-up against {backends[0]}.\n\n"
        f"{header}\n" + "\n".join(rows)
    )
    name = "scan_speed" if args.device == "cpu" else "scan_speed_cuda"
    update_section(name, f"Selective scan backends ({args.device})", body)


if __name__ == "__main__":
    main()
