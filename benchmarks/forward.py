"""The model's forward pass at 640x512 on the CPU: how it ran before this project's CPU path
(eager fp32, glibc's malloc defaults) against how ``nirstream run`` runs it now (malloc tuned,
``precision: auto``), natively and with the CPU limited to AVX2.

Each way is a fresh process (malloc's settings and the ISA limits hold for a whole process),
the ways alternated round by round. A process colorizes a real frame (the demo clip's first,
scaled to 640x512) through :class:`~nirstream.stream.colorizer.Colorizer` and reports the
median of its timed frames after a warm-up. "AVX2 only" runs the same machine with torch's
kernels, oneDNN, MKL and FBGEMM (the int8 GEMMs) held to AVX2 (``ATEN_CPU_CAPABILITY=avx2``,
``ONEDNN_MAX_CPU_ISA=AVX2``, ``MKL_ENABLE_INSTRUCTIONS=AVX2``,
``FBGEMM_ENABLE_INSTRUCTIONS=AVX2``; Inductor's C++ built for ``-march=haswell``, an
addition after the recorded run, which built it for ``-march=native``): an emulation of an AVX2-only CPU, not one (its caches,
memory and clocks stay this machine's). There fp32 is what ``precision: auto`` takes, as on a
CPU without bf16 instructions. Both ISAs also run ``precision: int8`` (int8 Linear layers)
and ``engine.backend: compile`` (torch.compile, Inductor's generated C++ for what it can
fuse) in fp32, natively also with ``precision: auto``. Compile time is in the warm-up, not
the timed frames; the table gives each way's warm-up in the first round (Inductor's cache, a
folder of this run's, shared by the ways: the first compiling way starts from an empty one,
the next may find some of its kernels) and in later rounds (the cache warm, as for a second
``nirstream run`` on the same machine).
Writes the ``forward`` section of RESULTS.md.

    python benchmarks/forward.py [--rounds 3] [--frames 8]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from nirstream.stream.allocator import GLIBC_DEFAULTS

from results import cpu_features, load, update_section

AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "TORCHINDUCTOR_CPP_MARCH": "haswell"}

WAYS = {
    "before: eager fp32, glibc malloc": ({}, GLIBC_DEFAULTS, "fp32", "eager"),
    "now: malloc tuned, fp32": ({}, {}, "fp32", "eager"),
    "now: malloc tuned, precision auto": ({}, {}, "auto", "eager"),
    "malloc tuned, torch.compile fp32": ({}, {}, "fp32", "compile"),
    "malloc tuned, torch.compile, precision auto": ({}, {}, "auto", "compile"),
    "malloc tuned, precision int8": ({}, {}, "int8", "eager"),
    "AVX2 only, before: fp32, glibc malloc": (AVX2_ONLY, GLIBC_DEFAULTS, "fp32", "eager"),
    "AVX2 only, now: malloc tuned, fp32 (auto's choice there)": (AVX2_ONLY, {}, "fp32", "eager"),
    "AVX2 only, malloc tuned, torch.compile fp32": (AVX2_ONLY, {}, "fp32", "compile"),
    "AVX2 only, malloc tuned, precision int8": (AVX2_ONLY, {}, "int8", "eager"),
}
"""way: (ISA limits, malloc environment, precision, backend)"""


def one(precision: str, backend: str, frames: int) -> dict:
    """Time the colorizer in this process: median ms per 640x512 frame, and the precision run."""
    import time

    import cv2
    from loguru import logger

    from nirstream.core.assets import demo_clip
    from nirstream.stream.allocator import keep_freed_memory

    keep_freed_memory()  # as the nirstream command does (a no-op under GLIBC_DEFAULTS)
    from nirstream.stream.colorizer import Colorizer, ColorizerConfig
    from nirstream.core.models import create_model
    from nirstream.stream.sources import VideoSource

    logger.remove()
    with VideoSource(demo_clip()) as source:
        frame = next(iter(source))
    frame.nir = cv2.resize(frame.nir, (640, 512), interpolation=cv2.INTER_CUBIC)
    colorizer = Colorizer(create_model(), ColorizerConfig(device="cpu", precision=precision, backend=backend))
    start = time.perf_counter()
    colorizer.warmup(512, 640)
    warmup_s = time.perf_counter() - start
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        colorizer.colorize(frame)
        times.append((time.perf_counter() - start) * 1e3)
    return {"ms": statistics.median(times), "precision": colorizer.precision, "warmup_s": warmup_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8, help="timed frames per process")
    parser.add_argument("--one", nargs=2, metavar=("PRECISION", "BACKEND"), help=argparse.SUPPRESS)  # a child's way
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, args.frames)))
        return

    load_before = load()
    ms = {way: [] for way in WAYS}
    warmup_s = {way: [] for way in WAYS}
    chosen = {}
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(args.rounds):
            for way, (isa, malloc, precision, backend) in WAYS.items():
                command = [sys.executable, __file__, "--one", precision, backend, "--frames", str(args.frames)]
                env = {**os.environ, **isa, **malloc, "TORCHINDUCTOR_CACHE_DIR": cache}
                result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
                measured = json.loads(result.stdout.strip().splitlines()[-1])
                ms[way].append(measured["ms"])
                warmup_s[way].append(measured["warmup_s"])
                chosen[way] = measured["precision"]
            print({way: f"{values[-1]:.1f}" for way, values in ms.items()}, flush=True)

    def speedup(way: str, base: str) -> float:
        return statistics.median(b / w for w, b in zip(ms[way], ms[base]))

    lines = [
        f"Shipped CPU model, one 640x512 demo frame through the colorizer, {args.frames} timed frames per process "
        f"after a warm-up, {args.rounds} rounds alternated, torch's default threads; CPU flags: {cpu_features()}; "
        f"load before: {load_before}, after: {load()}. Speed-up: the median of each round's ratio to the 'before' "
        "way of the same ISA.",
        "",
        "| way | precision run | ms per frame (median of rounds) | speed-up | warm-up s: first round / later |",
        "|---|---|---|---|---|",
    ]
    for way in WAYS:
        base = "AVX2 only, before: fp32, glibc malloc" if way.startswith("AVX2") else "before: eager fp32, glibc malloc"
        later = f"{statistics.median(warmup_s[way][1:]):.1f}" if len(warmup_s[way]) > 1 else "-"
        lines.append(f"| {way} | {chosen[way]} | {statistics.median(ms[way]):.1f} | {speedup(way, base):.2f}x | "
                     f"{warmup_s[way][0]:.1f} / {later} |")
    lines += ["", "Every run (ms): " + "; ".join(f"{way} " + ", ".join(f"{v:.1f}" for v in values) for way, values in ms.items())]
    update_section("forward", "The model's forward pass at 640x512, before and now (benchmarks/forward.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
