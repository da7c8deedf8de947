"""The shipped weights and demo clip: present, described, small enough, and usable on a CPU."""


import numpy as np
import pytest

from nirstream.core.assets import assets_dir, demo_clip, shipped_models, shipped_weights
from nirstream.core.errors import ConfigError
from nirstream.core.models import build_model, complete_config, create_model, default_name, load_model_config
from nirstream.core.weights import load_model, read_metadata
from nirstream.stream.colorizer import Colorizer, ColorizerConfig
from nirstream.stream.frame import Frame
from nirstream.stream.sources import open_source

from conftest import REPOSITORY, SHARED_DATA

SHIPPED = shipped_models()  # colormamba-lite; colormamba-base once trained on a GPU (assets/weights/README.md)
LEGACY_SET_NAMES = {"scenes": "scenes_test"}  # set names in files released before 2026-12-05


def test_the_cpu_default_ships_and_unknown_names_do_not():
    assert "colormamba-lite" in SHIPPED
    assert shipped_weights("colormamba-paper") is None
    with pytest.raises(ConfigError, match="no shipped weights for 'colormamba-paper'"):
        create_model("colormamba-paper")  # a config without weights: only for timing (untrained=True)


def test_default_model_takes_the_best_shipped_one_for_the_device(monkeypatch):
    import torch

    from nirstream.core.models import factory

    assert default_name("cpu") == "colormamba-lite"
    real = factory.shipped_weights
    monkeypatch.setattr(factory, "shipped_weights", lambda name: real("colormamba-lite"))  # everything "ships"
    monkeypatch.setattr(factory, "resolve_device", lambda name: torch.device(name))
    assert default_name("cuda") == "colormamba-base"
    with pytest.raises(ConfigError, match="mps"):
        default_name("mps")
    monkeypatch.setattr(factory, "shipped_weights", lambda name: None)
    with pytest.raises(ConfigError, match="pass --weights or --model"):
        default_name("cpu")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_say_what_they_are(name):
    path = shipped_weights(name)
    assert path.stat().st_size < 50e6
    meta = read_metadata(path)
    assert meta["model"]["arch"] == "colormamba"
    info = meta["info"]
    assert info["name"] == name
    # the file's architecture is the bundled config of its name, or one it grows into (a semantic
    # prior or a luma gate added), so --init NAME and train --config NAME agree
    from nirstream.core.train.init import grown_parts

    saved, bundled = complete_config(meta["model"]), build_model(load_model_config(name)).config
    assert saved == bundled or grown_parts(saved, bundled), (saved, bundled)
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
@pytest.mark.slow
def test_eval_reproduces_the_shipped_figures(vcip_root, monkeypatch):
    """Every set's scores recorded at release (the model card's figures) come back from
    ``nirstream eval --config [--test]`` on the shipped file: VCIP val, and the scene splits where
    the release recorded them."""
    import torch

    from nirstream.core.evaluate import evaluate
    from nirstream.core.train import load_train_config
    from nirstream.core.train.datasets import test_sets, validation_sets

    monkeypatch.chdir(REPOSITORY)  # the train config's data roots are relative to the checkout
    for name in SHIPPED:
        info = read_metadata(shipped_weights(name))["info"]
        recorded = {**(info.get("eval_sets") or {"val": info["eval"]}), **info.get("test_sets", {})}
        # Files released before 2026-12-05 recorded today's test split under "scenes".
        recorded = {LEGACY_SET_NAMES.get(set_name, set_name): scores for set_name, scores in recorded.items()}
        data = load_train_config(name if name == "colormamba-lite" else "colormamba-lite").data
        sets = {set_name or "val": dataset for set_name, dataset, _ in validation_sets(data)} | dict(test_sets(data))
        if set(recorded) != {"val"} and not (SHARED_DATA / "epfl_scenes").is_dir():
            pytest.skip("epfl_scenes not found beside the checkout")
        for set_name, scores in recorded.items():
            report = evaluate(load_model(shipped_weights(name)), sets[set_name], torch.device("cpu"))
            assert len(report.images) == scores.get("images", len(report.images)), set_name
            assert report.mean["psnr"] == pytest.approx(scores["psnr"], abs=0.05), set_name
            assert report.mean["ssim"] == pytest.approx(scores["ssim"], abs=0.002), set_name
            assert report.mean["ae"] == pytest.approx(scores["ae"], abs=0.02), set_name


@pytest.mark.data
def test_the_cpu_default_beats_the_gray_nir_on_the_test_scenes(monkeypatch, scenes_root):
    """Streets, buildings, interiors and water it never trained on (the fixed test split): the
    colorized frame must score better than the NIR frame shown as gray, or the model does harm
    outside the rural domain."""
    import torch

    from nirstream.core.evaluate import evaluate
    from nirstream.core.train import load_train_config
    from nirstream.core.train.datasets import test_sets

    monkeypatch.chdir(REPOSITORY)
    (scenes,) = [d for name, d in test_sets(load_train_config("colormamba-lite").data) if name == "scenes_test"]

    class Gray(torch.nn.Module):
        def forward(self, nir):
            return nir.expand(-1, 3, -1, -1)

    model = create_model()
    ours, gray = (evaluate(m, scenes, torch.device("cpu")).mean for m in (model, Gray()))
    assert ours["psnr"] > gray["psnr"], (ours, gray)

@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_output_matches_its_release_fingerprint(name):
    """Without any data set: the shipped file colorizes a synthetic frame exactly as it did when it
    was released (per-channel mean and spread recorded by tools/release_weights.py)."""
    import torch

    from nirstream.stream.sources import TestSource

    recorded = read_metadata(shipped_weights(name))["info"].get("fingerprint")
    if recorded is None:
        pytest.skip(f"{name} was released before fingerprints were recorded")
    width, height, index = recorded["testsrc"]
    nir = torch.from_numpy(TestSource(width, height).render(index)).float().div(255)[None, None]
    with torch.inference_mode():
        rgb = load_model(shipped_weights(name))(nir)[0].flatten(1)
    assert rgb.mean(dim=1).tolist() == pytest.approx(recorded["mean"], abs=1e-3)
    assert rgb.std(dim=1).tolist() == pytest.approx(recorded["std"], abs=1e-3)


def test_create_model_takes_a_device_object_and_a_weights_file_of_any_name(tmp_path):
    import shutil

    import torch

    odd = tmp_path / "lite.weights"
    shutil.copy(shipped_weights("colormamba-lite"), odd)
    model = create_model(str(odd), device=torch.device("cpu"))
    assert model.config == complete_config(read_metadata(shipped_weights("colormamba-lite"))["model"])
    assert default_name(torch.device("cpu")) == "colormamba-lite"
