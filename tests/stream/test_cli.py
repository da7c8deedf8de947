"""The command line: eval's reports, one-line errors, and help for every option."""


import argparse
import json

import cv2
import numpy as np
import pytest
import torch

from nirstream.core.weights import load_model
from nirstream.stream.cli import main



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


def test_eval_cli_scores_the_test_split_only_when_asked(weights, tmp_path, capsys):
    _, path = weights
    make_pairs(tmp_path / "data")
    make_pairs(tmp_path / "scenes", split="all")
    config = tmp_path / "train.yaml"
    config.write_text(
        f"data:\n  root: {tmp_path / 'data'}\n  test:\n    - {{name: held, root: {tmp_path / 'scenes'}, split: all, only: [img2]}}\n"
    )
    out = tmp_path / "out"
    assert main(["eval", "--weights", str(path), "--config", str(config), "--out", str(out), "--sheet-rows", "0"]) == 0
    assert not (out / "held").exists()  # validation sets only: the test split is never scored by default
    assert main(["eval", "--weights", str(path), "--config", str(config), "--test", "--out", str(out / "t"),
                 "--sheet-rows", "0"]) == 0
    assert [r["name"] for r in json.loads((out / "t" / "metrics.json").read_text())["images"]] == ["img2"]
    capsys.readouterr()
    assert main(["eval", "--weights", str(path), "--data", str(tmp_path / "data"), "--test"]) == 2
    assert "give it with --config" in capsys.readouterr().err
    config.write_text(f"data:\n  root: {tmp_path / 'data'}\n")
    assert main(["eval", "--weights", str(path), "--config", str(config), "--test"]) == 2
    assert "names no test split" in capsys.readouterr().err


def test_every_option_of_every_command_has_help():
    from nirstream.stream.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in commands.choices.items():
        for action in command._actions:
            assert action.help, f"nirstream {name} {'/'.join(action.option_strings)} has no help"
        assert command.epilog and "examples:" in command.epilog, name


def test_eval_video_reports_flicker_and_error_against_a_truth_video(weights, tmp_path, capsys):
    import av
    import numpy as np

    from videos import RATE, random_frames, write_video

    base = random_frames(1, 64, 48, 200, np.uint8)[0]
    nir = [base + np.uint8(2 * i) for i in range(6)]  # one scene, brightening slowly: no cuts
    write_video(tmp_path / "clip.mp4", "libx264", "gray", nir, {"qp": "0"})
    write_video(tmp_path / "cuts.mp4", "libx264", "gray", random_frames(6, 64, 48, 255, np.uint8), {"qp": "0"})
    with av.open(str(tmp_path / "truth.mkv"), "w") as container:
        stream = container.add_stream("libx264rgb", rate=RATE, options={"crf": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb24"
        for index, pixels in enumerate(nir):
            frame = av.VideoFrame.from_ndarray(np.repeat(pixels[:, :, None], 3, axis=2), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    _, path = weights
    assert main(["eval", "--weights", str(path), "--video", str(tmp_path / "cuts.mp4")]) == 0
    assert "needs 5 frames" in capsys.readouterr().out  # every frame a new scene: no flicker to measure, as in run
    base = ["eval", "--weights", str(path), "--video", str(tmp_path / "clip.mp4")]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "frames: 6" in out and "CDC (lower is steadier): 0." in out and "ground truth" not in out
    assert main([*base, "--truth", str(tmp_path / "truth.mkv")]) == 0
    out = capsys.readouterr().out
    assert "CDC of the ground truth: 0." in out and "excess flicker" in out and "PSNR" in out
    assert main([*base, "--truth", str(tmp_path / "missing.mkv")]) == 2
    assert "ground truth not found" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["run", "--source", "nosuch.mp4"],
    ["train", "--config", "colormamba-lite", "--set", "nope.key=1"],
    ["eval", "--model", "colormamba-paper", "--data", "nowhere"],
    ["bench", "--model", "nosuch.safetensors"],
    ["export", "--format", "onnx", "--out", "x.onnx", "--weights", "nosuch.safetensors"],
    ["run", "--bogus-option"],
])
def test_with_log_json_the_error_that_ends_a_command_is_a_json_object(argv, capsys):
    import json

    try:
        code = main([*argv, "--log-json"])
    except SystemExit as exit:  # argparse's own usage errors
        code = exit.code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and lines
    for line in lines:  # every stderr line, the last one included
        json.loads(line)
    last = json.loads(lines[-1])
    assert last["level"] == "ERROR" and last["exit_code"] == 2 and last["message"]


def test_a_second_eval_never_replaces_the_first(weights, tmp_path, monkeypatch):
    from pairs import write_pairs

    _, path = weights
    write_pairs(tmp_path / "data", "val", [("a", 1), ("b", 2)])
    monkeypatch.chdir(tmp_path)
    base = ["eval", "--weights", str(path), "--data", str(tmp_path / "data"), "--sheet-rows", "0"]
    assert main(base) == 0 and main(base) == 0
    first, second = tmp_path / "runs" / "eval" / f"{path.stem}-val", tmp_path / "runs" / "eval" / f"{path.stem}-val-2"
    assert (first / "metrics.json").exists() and (second / "metrics.json").exists()
    (first / "metrics.json").write_text("kept")
    assert main([*base, "--out", str(first)]) == 2  # an --out that holds a report: refused
    assert (first / "metrics.json").read_text() == "kept"
    assert main([*base, "--out", str(first), "--overwrite"]) == 0
    assert (first / "metrics.json").read_text() != "kept"


def test_a_terminal_that_reports_no_width_gets_progress_lines_not_bars(monkeypatch):
    import os
    import sys

    from nirstream.stream import cli

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((0, 0)))
    assert cli._terminal_columns() == 0
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((120, 40)))
    assert cli._terminal_columns() == 120


def test_help_and_errors_name_the_same_outputs(capsys):
    """--help says what a sink creates and lists the video endings the parser takes, .mov too."""
    from nirstream.stream.sinks.spec import VIDEO_SUFFIXES, parse_sink

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "missing folders are created" in text
    with pytest.raises(Exception) as error:
        parse_sink("out.avi")
    for suffix in VIDEO_SUFFIXES:
        assert suffix in text and suffix in str(error.value)


def test_the_demo_outputs_and_runs_are_ignored_by_git():
    import shutil
    import subprocess

    from conftest import REPOSITORY

    if shutil.which("git") is None or not (REPOSITORY / ".git").exists():
        pytest.skip("not a git checkout")
    names = ["nirstream-demo.mp4", "nirstream-demo-2.mp4", "nirstream-demo.partial.mp4", "runs/quickstart/best.safetensors"]
    result = subprocess.run(["git", "check-ignore", *names], cwd=REPOSITORY, capture_output=True, text=True)
    assert sorted(result.stdout.split()) == sorted(names)
