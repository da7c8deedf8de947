"""Shared fixtures: the optional real data beside the checkout, and deterministic seeding."""

import os
import sys
from pathlib import Path

import pytest
import torch

# Without a GPU, Triton kernels run in Triton's CPU interpreter (tests/test_scan_triton.py).
# Triton reads this when it is imported and when a kernel is decorated, and collecting other
# test modules imports it (torch.utils.flop_counter does), so it is set here, first.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Tests run many small ops; one thread avoids oversubscribing CI's two cores (and DataLoader
# workers), which made small ops 100x slower when other jobs loaded the machine.
torch.set_num_threads(1)

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = REPOSITORY.parent / "shared" / "data"


TINY_COLORMAMBA = {
    "arch": "colormamba",
    "ngf": 8,
    "nfg": 4,
    "width_mults": [1, 2],
    "depths": [1, 1],
    "decoder_depths": [1],
    "conv_depths": [1, 0],
    "stem_stride": 4,
    "d_state": 4,
    "expand": 1.0,
    "mlp_ratio": 1.0,
    "attn_reduction": 4,
    "attn_window": 3,
    "spade_hidden": 8,
}
"""About 20k parameters: a real ColorMamba (both U-Nets, VSS blocks, SPADE) that runs in milliseconds."""


@pytest.fixture
def vcip_root() -> Path:
    """The VCIP 2020 NIR/RGB pairs; the test is skipped where ``../shared/data`` is absent."""
    root = SHARED_DATA / "vcip2020_nir"
    if not (root / "val" / "nir").is_dir():
        pytest.skip(f"real data not found at {root}")
    return root


@pytest.fixture
def scenes_root() -> Path:
    """The EPFL street/town/building/indoor/water pairs; skipped where absent."""
    root = SHARED_DATA / "epfl_scenes"
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    return root


@pytest.fixture
def epfl_root() -> Path:
    """The high-resolution EPFL country pairs; skipped where absent."""
    root = SHARED_DATA / "epfl_country_hr"
    if not (root / "nir").is_dir():
        pytest.skip(f"real data not found at {root}")
    return root


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _log_to_the_stderr_of_the_moment():
    """A test that runs the command line (``main``) leaves loguru writing to that test's captured
    stderr, closed once it ends: later tests' log lines would go nowhere, with an error each."""
    yield
    from loguru import logger

    logger.remove()
    logger.add(lambda message: sys.stderr.write(message), level="DEBUG")


@pytest.fixture(autouse=True)
def _cpu_precision_is_fp32(monkeypatch):
    """``precision: auto`` on a CPU with bf16 units picks by timing, which a busy machine can flip:
    tests that compare two colorizers' outputs need one answer. Tests of the choice patch it back."""
    monkeypatch.setattr("nirstream.stream.colorizer.colorizer.cpu_has_bf16", lambda: False)


@pytest.fixture(autouse=True)
def _malloc_left_as_it_is(monkeypatch):
    """Commands run in-process (``main``) would tune this test process's malloc for the rest of
    the session; tests/stream/test_allocator.py checks the tuning in processes of its own."""
    monkeypatch.setattr("nirstream.stream.allocator.keep_freed_memory", lambda: False)


@pytest.fixture
def weights(tmp_path):
    """A tiny ColorMamba and its weights file: ``(model, path)``."""
    from nirstream.core.models import build_model
    from nirstream.core.weights import save_weights

    model = build_model(dict(TINY_COLORMAMBA)).eval()
    return model, save_weights(model, tmp_path / "tiny.safetensors", info={"epoch": 3})
