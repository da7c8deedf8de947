"""The malloc tuning: freed activations are reused, not mapped and zeroed again on every frame."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from nirstream.stream.allocator import GLIBC_DEFAULTS, TUNABLES, user_tunes_malloc, worker_environment

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _huge_pages_always() -> bool:
    """Transparent huge pages for every mapping: then even glibc's defaults fault rarely."""
    try:
        return "[always]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False


FAULTS_PER_FORWARD = """
import json, resource, sys
from nirstream.stream.allocator import keep_freed_memory
tuned = keep_freed_memory()
import torch
from nirstream.core.models import build_model, load_model_config
torch.manual_seed(0)
model = build_model(load_model_config("colormamba-lite")).eval()
x = torch.rand(1, 1, 720, 1280)
with torch.inference_mode():
    for _ in range(2):
        model(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(2):
        model(x)
print(json.dumps({"tuned": tuned, "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 2}))
"""


def test_the_users_own_malloc_settings_are_left_alone():
    assert not user_tunes_malloc({"PATH": "/bin", "HOME": "/root"})
    assert user_tunes_malloc({"MALLOC_ARENA_MAX": "2"})
    assert user_tunes_malloc({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"})
    assert user_tunes_malloc({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"})
    assert not user_tunes_malloc({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"})


def test_a_worker_yet_to_start_is_tuned_through_glibc_tunables_keeping_the_users_other_tunables(monkeypatch):
    for name in [name for name in os.environ if name.startswith("MALLOC_") or name in ("GLIBC_TUNABLES", "LD_PRELOAD")]:
        monkeypatch.delenv(name)
    if not GLIBC:
        assert worker_environment() == {}
        return
    assert worker_environment() == {"GLIBC_TUNABLES": TUNABLES}
    assert TUNABLES.split(":") == ["glibc.malloc.arena_max=1", "glibc.malloc.mmap_threshold=33554432",
                                   "glibc.malloc.trim_threshold=2147483647"]
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F")
    assert worker_environment() == {"GLIBC_TUNABLES": f"glibc.cpu.hwcaps=-AVX512F:{TUNABLES}"}
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert worker_environment() == {}


def _faults_per_forward(env: dict[str, str]) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LD_PRELOAD")}
    result = subprocess.run([sys.executable, "-c", FAULTS_PER_FORWARD], capture_output=True, text=True,
                            env={**clean, "OMP_NUM_THREADS": "1", **env}, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not GLIBC, reason="the tuning is glibc's mallopt")
@pytest.mark.skipif(_huge_pages_always(), reason="transparent huge pages for every mapping: few faults either way")
def test_a_tuned_process_reuses_a_forward_pass_activations():
    tuned = _faults_per_forward({})
    default = _faults_per_forward(GLIBC_DEFAULTS)
    started_tuned = _faults_per_forward(worker_environment() or {"GLIBC_TUNABLES": TUNABLES})  # as a cluster worker
    assert tuned["tuned"] and not default["tuned"] and not started_tuned["tuned"]
    # with its defaults glibc maps and unmaps a 1280x720 frame's activations again on every
    # forward pass (its moving threshold and trimming): about 30,000 page faults each; tuned, the
    # heap keeps them (400-4,500 seen here, against 27,000-30,000)
    assert default["faults"] > 15000
    assert tuned["faults"] < default["faults"] / 4
    assert started_tuned["faults"] < default["faults"] / 4
