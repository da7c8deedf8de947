"""``nirstream run`` end to end: generated videos in, playable colorized videos out."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from nirstream.core.assets import shipped_weights
from nirstream.core.models import build_model
from nirstream.core.weights import read_metadata, save_weights
from nirstream.stream.cli import main

from conftest import TINY_COLORMAMBA
from videos import RATE, random_frames, write_video


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny model, the same whichever tests ran before (module fixtures precede conftest's seeding):
    its colours decide how large the full-disk test's first fragment is."""
    torch.manual_seed(0)
    return save_weights(build_model(dict(TINY_COLORMAMBA)), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def read_back(path: Path) -> tuple[list[float], tuple[int, int]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [float(f.pts * f.time_base) for f in frames], (frames[0].width, frames[0].height)


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt", "high", "dtype", "options"),
    [
        ("gray8.mp4", "libx264", "gray", 255, np.uint8, {"qp": "0"}),
        ("gray16.mkv", "ffv1", "gray16le", 65535, np.uint16, {}),
    ],
)
def test_n_frames_in_give_n_frames_out_with_the_same_timestamps(tmp_path, weights, name, codec, pix_fmt, high, dtype, options):
    source = tmp_path / name
    write_video(source, codec, pix_fmt, random_frames(9, 641, 479, high, dtype), options)
    out, summary = tmp_path / "out.mp4", tmp_path / "summary.json"
    code = main(["run", "--source", str(source), "--sink", str(out), "--weights", str(weights),
                 "--summary-json", str(summary)])
    assert code == 0
    stamps, size = read_back(out)
    assert stamps == pytest.approx([i / RATE for i in range(9)], abs=2e-5)
    assert size == (642, 480)  # 4:2:0 H.264 needs even sizes: one repeated row and column
    report = json.loads(summary.read_text())[0]
    assert report["captured"] == report["written"] == 9 and report["dropped"] == {"capture->colorize": 0, "colorize->sinks": 0}


def test_a_glob_of_drives_goes_to_one_file_each(tmp_path, weights):
    for index in range(2):
        write_video(tmp_path / f"drive{index}.mp4", "libx264", "gray", random_frames(3, 64, 48, 255, np.uint8), {"qp": "0"})
    code = main(["run", "--source", str(tmp_path / "drive*.mp4"), "--sink", str(tmp_path / "out") + "/",
                 "--weights", str(weights)])
    assert code == 0
    for index in range(2):
        assert len(read_back(tmp_path / "out" / f"drive{index}.mp4")[0]) == 3


def test_corrupt_and_missing_inputs_are_one_line_errors(tmp_path, weights, capsys):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    for source in (corrupt, tmp_path / "missing.mp4"):
        assert main(["run", "--source", str(source), "--sink", "null", "--weights", str(weights)]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("nirstream: error:") and source.name in err[0]
    # bounded: were the bad key accepted, the endless testsrc would end after two frames, not hang
    assert main(["run", "--source", "testsrc", "--sink", "null", "--set", "engine.tiles=3", "--max-frames", "2"]) != 0
    assert "engine.tiles" in capsys.readouterr().err


@pytest.mark.slow
def test_sigint_mid_run_leaves_a_playable_file_with_every_processed_frame(tmp_path, weights):
    out, summary = tmp_path / "out.mp4", tmp_path / "summary.json"
    command = [sys.executable, "-m", "nirstream.stream.cli", "run", "--source", "testsrc:160x128@30",
               "--sink", str(out), "--weights", str(weights), "--summary-json", str(summary)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    partial = tmp_path / "out.partial.mp4"  # where a recording lives until the run completes
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size < 20_000):
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()  # a run that ignored SIGINT must not outlive the test
    assert process.returncode == 130, stderr
    written = json.loads(summary.read_text())[0]["written"]
    assert not out.exists() and "frames kept in" in stderr and partial.name in stderr
    stamps, _ = read_back(partial)
    assert written > 0 and len(stamps) == written
    assert stamps == pytest.approx([i / 30 for i in range(written)], abs=2e-5)


def test_run_with_no_source_colorizes_the_demo_into_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--max-frames", "3", "--side-by-side"]) == 0
    pts, size = read_back(tmp_path / "nirstream-demo.mp4")
    assert len(pts) == 3 and size == (960, 320)  # NIR | RGB, each 480x320
    err = capsys.readouterr().err
    assert "colormamba-lite (shipped weights" in err and str(tmp_path / "nirstream-demo.mp4") in err


def test_default_model_follows_the_device(monkeypatch, capsys):
    import torch

    from nirstream.core.models import factory
    from nirstream.stream import run as run_module
    from nirstream.stream.cli import configure_logging
    from nirstream.stream.config import RunConfig

    configure_logging(debug=False, as_json=False)
    from nirstream.core.models import complete_config

    lite = complete_config(read_metadata(shipped_weights("colormamba-lite"))["model"])
    assert run_module.model_for(RunConfig()).config == lite
    monkeypatch.setattr(factory, "resolve_device", lambda name: torch.device("cuda"))
    base = shipped_weights("colormamba-base")
    assert factory.default_name("auto") == ("colormamba-base" if base else "colormamba-lite")
    if base is None:
        assert "no colormamba-base weights ship with this version: using colormamba-lite" in capsys.readouterr().err


def test_model_yaml_runs_untrained_with_a_warning(tmp_path, capsys):
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(dict(TINY_COLORMAMBA)))
    assert main(["run", "--source", "testsrc:64x48", "--model", str(path), "--max-frames", "2"]) == 0
    assert "running it untrained" in capsys.readouterr().err


def test_a_second_run_never_replaces_the_first_output_unless_asked(tmp_path, weights, capsys):
    out = tmp_path / "keep.mp4"
    base = ["run", "--source", "testsrc:64x48", "--max-frames", "3", "--weights", str(weights), "--sink", str(out)]
    assert main(base) == 0
    first = out.read_bytes()
    assert main([*base[:-2], "--max-frames", "5", "--sink", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"nirstream: error: {out} exists: pass --overwrite (or -y) to replace it, or choose another --sink"
    assert out.read_bytes() == first and sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]
    assert main([*base[:-2], "--max-frames", "5", "-y", "--sink", str(out)]) == 0
    assert len(read_back(out)[0]) == 5


def test_the_demo_output_takes_a_free_name(tmp_path):
    from nirstream.stream.cli import _free_name

    demo = tmp_path / "nirstream-demo.mp4"
    assert _free_name(demo) == str(demo)
    demo.write_bytes(b"the first run's result")
    (tmp_path / "nirstream-demo-2.mp4").write_bytes(b"the second's")
    assert _free_name(demo) == str(tmp_path / "nirstream-demo-3.mp4")


def test_log_json_writes_json_lines_only_with_the_summary_as_one_object(weights, capsys):
    assert main(["run", "--source", "testsrc:64x48", "--max-frames", "3", "--weights", str(weights), "--log-json"]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    records = [json.loads(line)["record"] for line in lines]  # every line is JSON
    (summary,) = [r["extra"]["summary"] for r in records if "summary" in r["extra"]]
    assert summary["written"] == 3 and summary["captured"] == 3
    assert any("no --sink" in r["message"] for r in records)  # a run that keeps nothing says so


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path, capsys):
    from cv2.utils import logging as opencv_logging

    missing = ["run", "--source", str(tmp_path / "missing.mp4")]
    assert main(missing) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert opencv_logging.getLogLevel() == opencv_logging.LOG_LEVEL_ERROR  # OpenCV's own warnings stay quiet
    assert main([*missing, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("nirstream: error:")


def test_outputs_that_cannot_be_written_fail_before_the_model_loads(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    # the model named does not exist: the run must stop at the output, before it looks for it
    code = main(["run", "--source", "testsrc:64x48", "--model", "no-such-model", "--sink", str(blocker / "out.mp4")])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"nirstream: error: cannot write {blocker / 'out.mp4'}: {blocker} is not a folder this user can write in"
    )


def test_two_inputs_that_would_write_one_file_are_refused_before_the_model_loads(tmp_path, capsys):
    for name in ("clip.mp4", "clip.mkv"):
        write_video(tmp_path / name, "libx264", "gray", random_frames(2, 32, 24, 255, np.uint8))
    code = main(["run", "--source", str(tmp_path / "clip.*"), "--sink", str(tmp_path / "out") + "/",
                 "--model", "no-such-model"])
    assert code == 2
    assert "two inputs would both write" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_batch_mirrors_the_folders_of_its_inputs(tmp_path, weights):
    """Drives of one file name in different folders (``car1/front.mp4``, ``car2/front.mp4``)."""
    for folder in ("car1", "car2/2026-11-29"):
        (tmp_path / "drives" / folder).mkdir(parents=True)
        write_video(tmp_path / "drives" / folder / "front.mp4", "libx264", "gray", random_frames(2, 32, 24, 255, np.uint8))
    code = main(["run", "--source", str(tmp_path / "drives" / "**" / "*.mp4"), "--sink", str(tmp_path / "out") + "/",
                 "--weights", str(weights)])
    assert code == 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.mp4"))
    assert written == ["car1/front.mp4", "car2/2026-11-29/front.mp4"]


def _limit_file_size(limit: int):
    """A child whose files cannot grow past ``limit`` bytes: writes fail with EFBIG, as a full disk fails with ENOSPC."""

    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 kB file system, where this machine lets the tests mount one (root, CAP_SYS_ADMIN)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=False)


@pytest.mark.parametrize("full", ["tmpfs", "file size limit"])
def test_a_full_disk_ends_with_one_line_and_a_playable_partial_file(tmp_path, weights, full, request):
    folder = request.getfixturevalue("small_tmpfs") if full == "tmpfs" else tmp_path
    out = folder / "out.mp4"
    # fp32 pinned: precision auto chooses by timing in the subprocess (conftest's patch stays here), and
    # bf16's output, other bytes, could fill the 64 kB before the first fragment is whole
    command = [sys.executable, "-m", "nirstream.stream.cli", "run", "--sink", str(out), "--weights", str(weights),
               "--set", "engine.precision=fp32"]
    limit = None if full == "tmpfs" else _limit_file_size(64_000)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=limit, check=False,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    errors = [line for line in result.stderr.splitlines() if line.startswith("nirstream: error:")]
    assert result.returncode == 2, result.stderr[-2000:]
    partial = folder / "out.partial.mp4"
    reason = "disk full" if full == "tmpfs" else "file too large"
    assert len(errors) == 1 and reason in errors[0] and str(partial) in errors[0], result.stderr[-2000:]
    assert errors[0].endswith("frames kept in {})".format(partial))  # the last line says what survived
    assert not errors[0].endswith(f"(0 frames kept in {partial})"), result.stderr[-3000:]
    assert "Traceback" not in result.stderr and not out.exists()
    kept, _ = read_back(partial)
    assert 0 < len(kept) < 135  # the demo clip's frames up to the last complete fragment
    assert f"{len(kept)} frames kept in {partial}" in result.stderr


def _mixed_folder(root: Path) -> Path:
    """Three NIR images of different sizes (one odd) and one that is not an image at all."""
    from nirstream.core.data.images import write_image

    folder = root / "drive"
    rng = np.random.default_rng(3)
    for name, (width, height) in {"cam_a_001.png": (64, 48), "cam_b_001.tif": (50, 38), "cam_a_002.png": (64, 48)}.items():
        write_image(folder / name, rng.integers(0, 256, (height, width), dtype=np.uint8))
    (folder / "cam_a_003.png").write_bytes(b"not a png")
    return folder


def test_images_of_mixed_sizes_go_to_an_image_folder_each_at_its_size_and_name(tmp_path, weights, capsys):
    from nirstream.core.data.images import read_image

    folder = _mixed_folder(tmp_path)
    out = tmp_path / "colour"
    assert main(["run", "--source", str(folder), "--sink", f"{out}/", "--weights", str(weights)]) == 0
    sizes = {path.name: read_image(path).shape for path in out.iterdir()}
    assert sizes == {"cam_a_001.png": (48, 64, 3), "cam_a_002.png": (48, 64, 3), "cam_b_001.png": (38, 50, 3)}
    err = capsys.readouterr().err
    assert "1 of 4 images could not be read and were skipped" in err and "cam_a_003.png" in err


def test_images_of_mixed_sizes_into_a_video_suggest_resize_which_works(tmp_path, weights, capsys):
    folder = _mixed_folder(tmp_path)
    out = tmp_path / "drive.mp4"
    assert main(["run", "--source", str(folder), "--sink", str(out), "--weights", str(weights)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("nirstream: error:")]
    assert len(errors) == 1 and "cam_b_001.tif is 50x38 but the video drive.mp4 is 64x48" in errors[0]
    assert "--resize 64x48" in errors[0] and not out.exists()
    assert main(["run", "--source", str(folder), "--sink", str(out), "--weights", str(weights), "--resize", "64x48"]) == 0
    stamps, size = read_back(out)
    assert len(stamps) == 3 and size == (64, 48)
    assert main(["run", "--source", str(folder), "--sink", "null", "--weights", str(weights), "--resize", "64by48"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


def test_resized_source_keeps_bit_depth_and_timestamps():
    from nirstream.stream.sources import TestSource
    from nirstream.stream.sources.resize import ResizedSource

    source = ResizedSource(TestSource(64, 48, frames=3, bit_depth=16), (32, 24))
    frames = list(source)
    assert (source.info.width, source.info.height) == (32, 24)
    assert all(f.nir.shape == (24, 32) and f.nir.dtype == np.uint16 for f in frames)
    assert [f.index for f in frames] == [0, 1, 2]


@pytest.mark.parametrize("sink", ["window", "preview", "foxglove"])
def test_a_sink_that_cannot_work_fails_before_the_model_loads(sink, monkeypatch, capsys):
    import socket

    from nirstream.stream import run as run_module

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(run_module, "model_for", lambda config: pytest.fail("the model loaded first"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        spec = sink if sink == "window" else f"{sink}:{taken.getsockname()[1]}"
        assert main(["run", "--source", "testsrc", "--sink", spec]) == 2
    err = capsys.readouterr().err
    assert ("--sink preview" in err) if sink == "window" else ("Address already in use" in err)
