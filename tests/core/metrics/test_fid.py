"""FID: the Fréchet distance itself, and FID from a local TorchScript feature extractor only."""

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import Tensor, nn

from nirstream.core.errors import WeightsError
from nirstream.core.metrics.fid import FID_UNAVAILABLE, FIDAccumulator, frechet_distance


def test_frechet_distance_matches_the_closed_form_with_scipy():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g, dtype=torch.float64)
    b = torch.randn(300, 6, generator=g, dtype=torch.float64) @ torch.rand(6, 6, generator=g, dtype=torch.float64) + 0.5
    mu_a, mu_b = a.mean(0).numpy(), b.mean(0).numpy()
    cov_a, cov_b = np.cov(a.numpy().T), np.cov(b.numpy().T)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert abs(frechet_distance(a, a)) < 1e-8
    with pytest.raises(ValueError, match="two images"):
        frechet_distance(a[:1], b)


class ColourStats(nn.Module):
    """A stand-in feature extractor with the Inception file's calling convention (uint8 in)."""

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor:
        x = x.float() / 255
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def test_fid_accumulator_loads_torchscript_and_separates_sets(tmp_path):
    path = tmp_path / "features.pt"
    torch.jit.script(ColourStats()).save(str(path))
    real = torch.rand(8, 3, 16, 16)
    same = FIDAccumulator(path, torch.device("cpu"))
    same.add(real, real)
    assert abs(same.value()) < 1e-8
    shifted = FIDAccumulator(path, torch.device("cpu"))
    shifted.add((real * 0.5).clamp(0, 1), real)
    assert shifted.value() > 0.01
    with pytest.raises(WeightsError, match="not found"):
        FIDAccumulator(tmp_path / "missing.pt", torch.device("cpu"))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="not a TorchScript"):
        FIDAccumulator(tmp_path / "junk.pt", torch.device("cpu"))


def test_eval_reports_fid_only_with_weights(tmp_path, capsys):
    import json

    from conftest import TINY_COLORMAMBA
    from pairs import write_pairs

    from nirstream.core.models import build_model
    from nirstream.core.weights import save_weights
    from nirstream.stream.cli import main

    write_pairs(tmp_path / "data", "val", [(f"s{i}", i) for i in range(3)])
    weights = save_weights(build_model(dict(TINY_COLORMAMBA)), tmp_path / "w.safetensors")
    base = ["eval", "--weights", str(weights), "--data", str(tmp_path / "data"), "--sheet-rows", "0"]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert FID_UNAVAILABLE in capsys.readouterr().out
    report = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert report["fid"] is None and "cannot be downloaded" in report["fid_note"]
    torch.jit.script(ColourStats()).save(str(tmp_path / "features.pt"))
    assert main([*base, "--out", str(tmp_path / "fid"), "--fid-weights", str(tmp_path / "features.pt")]) == 0
    assert "FID over 3 images" in capsys.readouterr().out
    from nirstream.core.data import PairedFolderDataset
    from nirstream.core.evaluate import evaluate
    from nirstream.core.weights import load_model

    expected = evaluate(load_model(weights), PairedFolderDataset(tmp_path / "data", "val"),
                        torch.device("cpu"), fid_weights=tmp_path / "features.pt").fid
    assert json.loads((tmp_path / "fid" / "metrics.json").read_text())["fid"] == pytest.approx(expected, rel=1e-6)
