"""Released weights round-trip from the file alone; eval and the CLI report and fail cleanly."""

import argparse
import json
import os

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from nirstream.core.errors import WeightsError
from nirstream.core.models import build_model
from nirstream.core.weights import load_model, read_metadata, save_weights
from nirstream.stream.cli import main

from conftest import TINY_COLORMAMBA


@pytest.fixture
def weights(tmp_path):
    model = build_model(dict(TINY_COLORMAMBA)).eval()
    path = save_weights(model, tmp_path / "tiny.safetensors", info={"epoch": 3})
    return model, path


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


def make_pairs(root, split="val", count=3, size=64):
    rng = np.random.default_rng(0)
    for folder in ("nir", "rgb"):
        (root / split / folder).mkdir(parents=True)
    for i in range(count):
        nir = (rng.random((size, size)) * 255).astype(np.uint8)
        rgb = np.stack([nir, 255 - nir, nir // 2], axis=-1)
        cv2.imwrite(str(root / split / "nir" / f"img{i}.png"), nir)
        cv2.imwrite(str(root / split / "rgb" / f"img{i}.png"), rgb[..., ::-1])


def test_eval_cli_prints_table_and_writes_json_and_sheet(weights, tmp_path, capsys):
    _, path = weights
    make_pairs(tmp_path / "data")
    out = tmp_path / "out"
    code = main(["eval", "--weights", str(path), "--data", str(tmp_path / "data"), "--out", str(out), "--sheet-rows", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "img0" in printed and "mean" in printed
    report = json.loads((out / "metrics.json").read_text())
    assert [r["name"] for r in report["images"]] == ["img0", "img1", "img2"]
    assert report["mean"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in report["images"]]))
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape == (2 * 64, 3 * 64, 3)  # two rows of NIR | prediction | truth


def test_cli_errors_are_one_line_and_non_zero(weights, tmp_path, capsys):
    _, path = weights
    cases = [
        ["eval", "--weights", str(tmp_path / "none.safetensors"), "--data", str(tmp_path)],
        ["eval", "--weights", str(path), "--data", str(tmp_path / "no-such-data")],
        ["train", "--config", "colormamba-lite", "--set", "optim.lrr=1"],
        ["train", "--config", str(tmp_path / "missing.yaml")],
        ["eval", "--model", "colormamba-paper", "--data", str(tmp_path)],  # ships no weights
        ["run", "--source", "testsrc", "--model", "no-such-model"],
    ]
    for argv in cases:
        assert main(argv) != 0
        err = capsys.readouterr().err.strip()
        assert err.startswith("nirstream: error:") and "\n" not in err, err
        assert "Traceback" not in err
    main(["train", "--config", "colormamba-lite", "--set", "optim.lrr=1"])
    assert "optim.lrr" in capsys.readouterr().err


def test_config_binding_rejects_scalars_for_lists_and_bools_for_numbers():
    from nirstream.core.config import apply_overrides, bind
    from nirstream.core.errors import ConfigError
    from nirstream.core.train.config import DataConfig

    with pytest.raises(ConfigError, match="'data.exclude' must be a list"):
        bind(DataConfig, apply_overrides({}, ["exclude=country_0030"]), "data")
    with pytest.raises(ConfigError, match="'data.batch_size' must be int"):
        bind(DataConfig, {"batch_size": True}, "data")
    assert bind(DataConfig, apply_overrides({}, ["exclude=[country_0030]"]), "data").exclude == ["country_0030"]


def test_eval_cli_scores_a_shipped_model_by_name(tmp_path, capsys):
    make_pairs(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["eval", "--model", "colormamba-lite", "--data", str(tmp_path / "data"), "--out", str(out)]) == 0
    assert "mean" in capsys.readouterr().out
    from nirstream.core.assets import shipped_weights
    from nirstream.core.data import PairedFolderDataset
    from nirstream.core.evaluate import evaluate

    expected = evaluate(load_model(shipped_weights("colormamba-lite")), PairedFolderDataset(tmp_path / "data", "val"),
                        torch.device("cpu")).mean
    assert json.loads((out / "metrics.json").read_text())["mean"]["psnr"] == pytest.approx(expected["psnr"], abs=1e-9)


def test_eval_cli_flat_folder_only_some_pairs_with_category_means(weights, tmp_path, capsys):
    _, path = weights
    make_pairs(tmp_path / "data")
    flat = tmp_path / "flat"
    for folder in ("nir", "rgb"):  # <root>/nir and <root>/rgb, no split, names <category>_<id>
        for index, source in enumerate(sorted((tmp_path / "data" / "val" / folder).iterdir())):
            target = flat / folder / f"{('street', 'street', 'water')[index]}_{index:04d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    out = tmp_path / "out"
    argv = ["eval", "--weights", str(path), "--data", str(flat), "--split", "none", "--only", "street_0000,water_0002",
            "--out", str(out), "--sheet-rows", "0"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "mean street" in printed and "mean water" in printed and "street_0001" not in printed
    assert "colourfulness of the outputs over the ground truth's" in printed
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["groups"]) == {"street", "water"}
    assert report["mean"]["colorfulness_ratio"] == pytest.approx(
        report["mean"]["colorfulness"] / report["mean"]["colorfulness_truth"]
    )


def test_eval_cli_scores_every_validation_set_of_a_train_config(weights, tmp_path, capsys):
    _, path = weights
    make_pairs(tmp_path / "data")
    config = tmp_path / "train.yaml"
    config.write_text(
        f"data:\n  root: {tmp_path / 'data'}\n  more_val:\n    - {{name: again, root: {tmp_path / 'data'}, split: val, only: [img1]}}\n"
    )
    out = tmp_path / "out"
    assert main(["eval", "--weights", str(path), "--config", str(config), "--out", str(out), "--sheet-rows", "0"]) == 0
    assert "again:" in capsys.readouterr().out
    assert [r["name"] for r in json.loads((out / "val" / "metrics.json").read_text())["images"]] == ["img0", "img1", "img2"]
    assert [r["name"] for r in json.loads((out / "again" / "metrics.json").read_text())["images"]] == ["img1"]


def test_every_option_of_every_command_has_help():
    from nirstream.stream.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in commands.choices.items():
        for action in command._actions:
            assert action.help, f"nirstream {name} {'/'.join(action.option_strings)} has no help"
        assert command.epilog and "examples:" in command.epilog, name
