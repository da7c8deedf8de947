"""Write a benchmark's table into ``benchmarks/RESULTS.md`` as its own section.

Each benchmark owns one section between ``<!-- name -->`` markers and replaces only that, so
re-running one benchmark keeps every other result. A section records the command, machine and
date with the numbers, as the project asks of every performance claim.
"""

import datetime
import os
import platform
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Each section is written by the script it names; re-run the command to refresh it.\n"
    "CPU figures come from a shared, noisy 2-core machine: compare ratios measured side by side\n"
    "in one run, not absolute times across sections.\n"
)


def machine() -> str:
    """One line naming the machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{cpu} ({cpu_features()}), {os.cpu_count()} cores{gpu}; torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )


def cpu_features() -> str:
    """The vector and matrix extensions that decide CPU speed here: AMX, AVX-512 (with bf16), AVX2."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
        else:
            return "flags unknown"
    except OSError:
        return "flags unknown"
    named = {"amx_tile": "AMX", "avx512f": "AVX-512", "avx512_bf16": "AVX-512 bf16", "avx2": "AVX2"}
    have = [label for flag, label in named.items() if flag in flags]
    return ", ".join(have) if have else "no AVX2"


def load() -> str:
    """The 1-minute load average against the core count: how busy the machine was."""
    try:
        return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


def update_section(name: str, title: str, body: str) -> None:
    """Replace (or append) section ``name`` of RESULTS.md with ``body`` under ``title``."""
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    stamp = datetime.date.today().isoformat()
    section = (
        f"<!-- {name} -->\n## {title}\n\n"
        f"- command: `{command}`\n- machine: {machine()}\n- date: {stamp}\n\n{body.strip()}\n"
        f"<!-- /{name} -->"
    )
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)
