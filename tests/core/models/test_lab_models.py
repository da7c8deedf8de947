"""CIELAB conversions and the two LAB colorizers: resnet34-lab and pix2pix-lab with its PatchGAN."""

import json

import numpy as np
import pytest
import torch

from pairs import make_config, write_pairs

from nirstream.core.colorspace import AB_SCALE, lab_to_rgb, nir_ab_to_rgb, rgb_to_lab
from nirstream.core.config import bind
from nirstream.core.errors import ConfigError
from nirstream.core.losses import build_loss
from nirstream.core.losses.lab import target_ab
from nirstream.core.models import build_model, load_model_config
from nirstream.core.train import train
from nirstream.core.train.config import GanConfig
from nirstream.core.weights import read_metadata, save_weights
from nirstream.stream.cli import main

SMALL_PIX2PIX = {"arch": "pix2pix-lab", "ngf": 8, "depth": 4, "dropout_layers": 1}

# sRGB -> CIELAB (D65), from the CIE formulas; the same as skimage.color.rgb2lab to 0.01.
KNOWN_COLOURS = [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((0.5, 0.5, 0.5), (53.389, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.241, 80.092, 67.203)),
    ((0.0, 1.0, 0.0), (87.735, -86.183, 83.180)),
    ((0.0, 0.0, 1.0), (32.297, 79.188, -107.860)),
    ((1.0, 1.0, 0.0), (97.139, -21.554, 94.478)),
]


def _pixels(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).T.reshape(1, 3, len(values), 1)


def test_lab_matches_reference_values_for_known_colours():
    lab = rgb_to_lab(_pixels([rgb for rgb, _ in KNOWN_COLOURS]))[0, :, :, 0].T
    expected = torch.tensor([lab for _, lab in KNOWN_COLOURS], dtype=torch.float64)
    assert torch.allclose(lab, expected, atol=0.01), (lab - expected).abs().max()


def test_lab_round_trip_and_finite_gradients():
    rgb = torch.rand(2, 3, 16, 16)
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < 1e-4  # fp32
    extremes = _pixels([(0, 0, 0), (1, 1, 1), (0.5, 0.5, 0.5), (1, 0, 0)]).float().requires_grad_(True)
    rgb_to_lab(extremes).sum().backward()
    assert torch.isfinite(extremes.grad).all()
    lab = rgb_to_lab(extremes.detach()).requires_grad_(True)
    lab_to_rgb(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_zero_ab_is_neutral_gray_on_both_sides_no_red_cast():
    gray = torch.full((1, 3, 4, 4), 0.4)
    assert target_ab(gray).abs().max() < 1e-4  # normalised with no offset: gray is 0, not 0.5
    rgb = nir_ab_to_rgb(torch.full((1, 1, 4, 4), 0.4), torch.zeros(1, 2, 4, 4))
    assert (rgb.max(dim=1).values - rgb.min(dim=1).values).max() < 1e-4  # r = g = b
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert torch.allclose(target_ab(red) * AB_SCALE, torch.tensor([80.092, 67.203]).view(1, 2, 1, 1), atol=0.01)


@pytest.mark.parametrize("config", [load_model_config("resnet34-lab"), load_model_config("pix2pix-lab"), SMALL_PIX2PIX])
def test_lab_models_build_from_yaml_and_take_any_size(config):
    model = build_model(config).eval()
    nir = torch.rand(2, 1, 37, 53)
    with torch.no_grad():
        out = model.forward_with_aux(nir)
        single = model(nir[1:])
    assert out["rgb"].shape == (2, 3, 37, 53) and out["ab"].shape == (2, 2, 37, 53)
    assert out["rgb"].min() >= 0 and out["rgb"].max() <= 1 and out["ab"].abs().max() <= 1
    assert torch.allclose(single, out["rgb"][1:], atol=1e-5)  # no dependence on the rest of the batch
    unclamped = lab_to_rgb(torch.cat([nir * 100, out["ab"] * AB_SCALE], dim=1))
    in_gamut = ((unclamped >= 0) & (unclamped <= 1)).all(dim=1)
    assert in_gamut.float().mean() > 0.2
    lightness = rgb_to_lab(out["rgb"].double())[:, 0]
    assert torch.allclose(lightness[in_gamut], (nir[:, 0] * 100).double()[in_gamut], atol=0.05)  # L is the NIR


def test_ab_losses_need_the_ab_output():
    loss = build_loss({"ab_mse": 1.0, "ab_l1": 0.5})
    assert loss.required_outputs == {"ab"}
    rgb = torch.rand(2, 3, 8, 8)
    total, terms = loss({"ab": target_ab(rgb)}, rgb)
    assert float(total) < 1e-10 and set(terms) == {"ab_mse", "ab_l1"}
    with pytest.raises(ConfigError, match="needs the model output 'ab'"):
        loss({"rgb": rgb}, rgb)
    with pytest.raises(ConfigError, match="gan.start_epoch"):
        bind(GanConfig, {"start_epoch": 0})


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab") / "data"
    write_pairs(root, "train", [(f"scene{s}_copy{c}", s) for s in range(2) for c in range(8)])
    write_pairs(root, "val", [(f"scene{s}", s) for s in range(2)])
    return root


def _rows(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_resnet34_lab_overfits_through_the_trainer(pairs, tmp_path):
    config = make_config(pairs, tmp_path, "resnet", "optim.epochs=6", "optim.lr=1e-3", "loss={ab_mse: 1.0}")
    config.model = load_model_config("resnet34-lab")
    rows = _rows(train(config))
    assert rows[-1]["train_ab_mse"] < 0.25 * rows[1]["train_ab_mse"]
    assert max(r["val_psnr"] for r in rows[1:]) > rows[0]["val_psnr"] + 3.0


def test_pix2pix_lab_pretrains_then_adds_its_gan_and_runs_everywhere(pairs, tmp_path):
    config = make_config(
        pairs, tmp_path, "pix2pix", "optim.epochs=4", "optim.lr=2e-3", "loss={ab_l1: 1.0}", "gan.enabled=true",
        "gan.start_epoch=3", "gan.d_lr=1e-3", "gan.discriminator={base_channels: 8, num_layers: 2}",
    )
    config.model = dict(SMALL_PIX2PIX)
    run_dir = train(config)
    rows = _rows(run_dir)
    assert all("train_gan_g" not in r for r in rows[:3]) and all("train_gan_d" in r for r in rows[3:])
    assert rows[2]["train_ab_l1"] < rows[1]["train_ab_l1"]  # the L1 stage learns
    assert max(r["val_psnr"] for r in rows[1:]) > rows[0]["val_psnr"]

    weights = run_dir / "best.safetensors"
    assert read_metadata(weights)["info"]["epoch"] >= 3  # only adversarially trained epochs compete for best
    assert main(["eval", "--weights", str(weights), "--data", str(pairs), "--split", "val",
                 "--out", str(tmp_path / "eval"), "--sheet-rows", "0"]) == 0
    best = next(r for r in rows if r["epoch"] == read_metadata(weights)["info"]["epoch"])
    # eval scores the file as the trainer's validation did (the file keeps fp32 tensors)
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["mean"]["psnr"] == pytest.approx(best["val_psnr"], abs=1e-3)
    out = tmp_path / "run"
    assert main(["run", "--source", "testsrc:96x64@10", "--sink", f"{out}/", "--weights", str(weights),
                 "--max-frames", "3"]) == 0
    assert len(list(out.glob("*.png"))) == 3


def test_resnet34_lab_colorizes_tiled_frames(tmp_path):
    weights = save_weights(build_model(load_model_config("resnet34-lab")), tmp_path / "r.safetensors")
    out = tmp_path / "r.mp4"
    assert main(["run", "--source", "testsrc:200x120@10", "--sink", str(out), "--weights", str(weights),
                 "--max-frames", "4", "--set", "engine.tile=96", "--set", "engine.overlap=16"]) == 0
    import av

    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape == (120, 200, 3) and np.ptp(frames[0]) > 0
