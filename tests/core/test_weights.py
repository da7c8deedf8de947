"""Released weights: rebuilt from the file alone, stored in fp16, and clear errors for bad files."""


import os

import pytest
import torch
from safetensors.torch import save_file

from nirstream.core.errors import WeightsError
from nirstream.core.weights import load_model, read_metadata, save_weights



def test_weights_rebuild_the_model_from_the_file_alone(weights):
    model, path = weights
    meta = read_metadata(path)
    assert meta["model"] == model.config and meta["info"] == {"epoch": 3}
    loaded = load_model(path)
    nir = torch.rand(1, 1, 40, 56)
    with torch.no_grad():
        assert torch.equal(loaded(nir), model(nir))
    assert not loaded.training


def test_fp16_storage_halves_the_file_and_loads_as_fp32(weights, tmp_path):
    model, path = weights
    half = save_weights(model, tmp_path / "half.safetensors", dtype=torch.float16)
    assert half.stat().st_size < 0.6 * path.stat().st_size
    umask = os.umask(0)
    os.umask(umask)
    assert half.stat().st_mode & 0o777 == 0o666 & ~umask  # not safetensors' private 0600
    loaded = load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    nir = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert (loaded(nir) - model(nir)).abs().max() < 1e-2


def test_truncated_missing_and_foreign_files_are_clear_errors(weights, tmp_path):
    _, path = weights
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated|not a readable"):
        load_model(truncated)
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(WeightsError, match="not nirstream weights"):
        load_model(foreign)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError):
        load_model(garbage)


