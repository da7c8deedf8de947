"""The shipped weights and demo clip: present, described, small enough, and usable on a CPU."""

import numpy as np
import pytest

from nirstream.core.assets import assets_dir, default_model, demo_clip, require_shipped, shipped_models, shipped_weights
from nirstream.core.errors import ConfigError
from nirstream.core.weights import load_model, read_metadata
from nirstream.stream.colorizer import Colorizer, ColorizerConfig
from nirstream.stream.frame import Frame
from nirstream.stream.sources import open_source

SHIPPED = shipped_models()  # colormamba-lite; colormamba-base once trained on a GPU (assets/weights/README.md)


def test_the_cpu_default_ships_and_unknown_names_do_not():
    assert "colormamba-lite" in SHIPPED
    assert shipped_weights("colormamba-paper") is None
    with pytest.raises(ConfigError, match="no shipped weights for 'colormamba-paper'"):
        require_shipped("colormamba-paper")


def test_default_model_takes_the_best_shipped_one_for_the_device(monkeypatch):
    from nirstream.core import assets

    assert default_model("cpu") == "colormamba-lite"
    assert default_model("cuda") == ("colormamba-base" if "colormamba-base" in SHIPPED else "colormamba-lite")
    real = assets.shipped_weights
    monkeypatch.setattr(assets, "shipped_weights", lambda name: real("colormamba-lite"))  # everything "ships"
    assert default_model("cuda") == "colormamba-base"
    with pytest.raises(ConfigError, match="mps"):
        default_model("mps")
    monkeypatch.setattr(assets, "shipped_weights", lambda name: None)
    with pytest.raises(ConfigError, match="pass --weights or --model"):
        default_model("cpu")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_say_what_they_are(name):
    path = shipped_weights(name)
    assert path.stat().st_size < 50e6
    meta = read_metadata(path)
    assert meta["model"]["arch"] == "colormamba"
    info = meta["info"]
    assert info["name"] == name and info["config"]["model"] == name
    assert info["config"]["data"]["root"].endswith("vcip2020_nir")
    assert (info["config"]["data"]["train_split"], info["config"]["data"]["val_split"]) == ("train", "val")
    assert f"nirstream train --config {name}" in info["command"]
    assert info["machine"] and info["training_seconds"] > 0 and info["epoch"] >= 1
    assert "research" in info["terms"]
    assert {"val_psnr", "val_ssim", "val_ae"} <= info["metrics"].keys()
    assert (assets_dir() / "weights" / "README.md").is_file()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_colorizes_a_demo_frame(name):
    source = open_source(str(demo_clip()))
    nir = next(iter(source)).nir[96:224, 128:320]  # a 192x128 crop: the base model is slow on a CPU
    source.close()
    model = load_model(shipped_weights(name))
    colorizer = Colorizer(model, ColorizerConfig(device="cpu", tile=0, warmup=False))
    rgb = colorizer.colorize(Frame(0, 0.0, 0.0, nir)).rgb
    assert rgb.shape == (*nir.shape, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 5, "a flat output"
    chroma = np.abs(rgb.astype(float) - rgb.mean(axis=2, keepdims=True)).mean()
    assert chroma > 1.5, f"a grayscale output (mean |channel - gray| {chroma:.2f})"


def test_demo_clip_is_a_short_real_nir_video():
    path = demo_clip()
    assert path.stat().st_size <= 3e6
    assert (path.parent / "README.md").is_file()
    source = open_source(str(path))
    info = source.info
    frames = [frame.nir for frame in source]
    source.close()
    assert info.bit_depth == 8 and not info.live
    assert len(frames) == info.frame_count and 3 <= len(frames) / info.fps <= 15
    assert frames[0].ndim == 2 and frames[0].std() > 20  # a real scene, not a flat test pattern
    assert np.abs(frames[1].astype(int) - frames[0]).mean() < 20  # a slow pan, not a slideshow


@pytest.mark.data
def test_eval_reproduces_the_shipped_figures(vcip_root):
    """``nirstream eval`` on the shipped file gives the val scores recorded at release (and in the README)."""
    import torch

    from nirstream.core.data import PairedFolderDataset
    from nirstream.core.evaluate import evaluate

    for name in SHIPPED:
        recorded = read_metadata(shipped_weights(name))["info"]["eval"]
        report = evaluate(load_model(shipped_weights(name)), PairedFolderDataset(vcip_root, recorded["split"]),
                          torch.device("cpu"))
        assert report.mean["psnr"] == pytest.approx(recorded["psnr"], abs=0.05)
        assert report.mean["ssim"] == pytest.approx(recorded["ssim"], abs=0.002)
        assert report.mean["ae"] == pytest.approx(recorded["ae"], abs=0.02)
