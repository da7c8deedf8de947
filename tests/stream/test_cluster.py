"""``nirstream run --cluster``: a batch on a local Ray of two single-thread CPU workers.

The cluster's outputs are compared with single-machine runs of the same files, frame for
frame; workers are killed (SIGKILL) from the driver's progress callback to prove that a file
is retried elsewhere and that one failing every try is reported while the others finish.
"""

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

from nirstream.core.models import build_model
from nirstream.core.weights import save_weights
from nirstream.stream.cli import main
from nirstream.stream.cluster import (
    ClusterConfig, Job, connect, plan_jobs, pool_shape, run_on_cluster, shared_storage_problems,
)
from nirstream.stream.config import load_run_config
from nirstream.stream.errors import ClusterError
from nirstream.stream.run import run

from conftest import TINY_COLORMAMBA
from videos import fragmented_mp4, write_video

SIZES = {"short": 20, "middle": 35, "long": 400}  # frames of 160x120 per file: seconds for the long one


def _drive(path: Path, frames: int, seed: int) -> Path:
    base = np.random.default_rng(seed).integers(0, 256, (120, 160), dtype=np.uint8)
    write_video(path, "libx264", "gray", [np.roll(base, 2 * k, axis=1) for k in range(frames)])
    return path


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _config(weights: Path, *overrides: str):
    config = load_run_config(None, ["engine.precision=fp32", *overrides])  # workers do not see conftest's patch
    config.weights = str(weights)
    return config


# --- without a cluster ------------------------------------------------------------------------


def test_pool_has_a_worker_per_gpu_or_per_thread_group_and_never_more_than_files():
    assert pool_shape({"CPU": 64, "GPU": 8}, None, None, files=100) == (8, 1, True)
    assert pool_shape({"CPU": 64, "GPU": 8}, None, None, files=3) == (3, 1, True)
    assert pool_shape({"CPU": 16}, None, None, files=100) == (16, 1, False)
    assert pool_shape({"CPU": 16}, None, 2, files=100) == (8, 2, False)
    assert pool_shape({"CPU": 16}, 2, None, files=100) == (2, 8, False)
    assert pool_shape({"CPU": 2}, None, None, files=1) == (1, 1, False)


def test_storage_a_worker_cannot_see_is_named(tmp_path):
    marker = tmp_path / "out" / "marker"
    marker.parent.mkdir()
    marker.write_text("token")
    video = _drive(tmp_path / "a.mp4", 2, 0)
    assert shared_storage_problems({str(marker): "token"}, [str(video)]) == []
    assert shared_storage_problems({str(marker): "other"}, [str(video)]) == [f"the output folder {marker.parent}"]
    assert shared_storage_problems({str(tmp_path / "gone" / "m"): "t"}, [str(tmp_path / "b.mp4")]) == [
        f"the output folder {tmp_path / 'gone'}", f"the input {tmp_path / 'b.mp4'}"]


def test_without_ray_the_cluster_flag_says_what_to_install(tmp_path, monkeypatch, capsys):
    video = _drive(tmp_path / "a.mp4", 2, 0)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where the extra is not installed
    code = main(["run", "--source", str(video), "--sink", str(tmp_path / "out") + "/", "--cluster", "ray"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "nirstream: error: --cluster needs Ray, an optional extra: pip install 'nirstream[ray]'"


def test_pool_options_without_a_cluster_are_an_error(tmp_path, capsys):
    assert main(["run", "--source", "testsrc", "--workers", "2"]) == 2
    assert "add --cluster ray" in capsys.readouterr().err


def test_a_batch_refuses_live_sources_sinks_that_show_and_unknown_addresses(tmp_path, monkeypatch):
    from nirstream.stream.sources import TestSource

    config = load_run_config(None)
    with monkeypatch.context() as patch:  # a camera, as far as the batch can tell
        patch.setattr("nirstream.stream.run.open_source", lambda spec, **_: TestSource(live=True))
        with pytest.raises(ClusterError, match="is live: run it without --cluster"):
            plan_jobs("cam0", [], config)
    with pytest.raises(ClusterError, match="the window sink would open on a worker"):
        plan_jobs(str(_drive(tmp_path / "a.mp4", 2, 0)), ["window"], config)

    class NoRay:
        def is_initialized(self):
            return False

    with pytest.raises(ClusterError, match="unknown --cluster 'spark'"):
        connect(NoRay(), "spark")


def test_jobs_have_absolute_paths_and_expected_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _drive(tmp_path / "a.mp4", 4, 0)
    _drive(tmp_path / "b.mp4", 6, 1)
    jobs, folders = plan_jobs("*.mp4", ["out/"], load_run_config(None))
    assert folders == [tmp_path / "out"]
    assert [(job.name, job.frames, job.work) for job in jobs] == [("a.mp4", 4, 4 * 160 * 120), ("b.mp4", 6, 6 * 160 * 120)]
    assert jobs[1].input == str(tmp_path / "b.mp4") and jobs[1].targets[0].path == tmp_path / "out" / "b.mp4"
    assert jobs[0].fps == 25


def test_a_worker_runs_the_model_on_one_thread_whichever_thread_ray_calls_it_on(tmp_path, monkeypatch):
    """Ray calls a worker from a pool of threads; torch would keep an OpenMP team for each."""
    import threading

    import nirstream.stream.run as run_module
    from nirstream.stream.cluster import ColorizeWorker
    from nirstream.stream.sinks.spec import parse_sink

    torch.manual_seed(0)
    weights = save_weights(build_model(dict(TINY_COLORMAMBA)).eval(), tmp_path / "tiny.safetensors", info={"epoch": 1})
    model_threads = []
    real_colorize_input = run_module.colorize_input

    def colorize_input(*args, **kwargs):
        model_threads.append(threading.get_ident())
        return real_colorize_input(*args, **kwargs)

    monkeypatch.setattr(run_module, "colorize_input", colorize_input)
    real_model_for = run_module.model_for
    monkeypatch.setattr(run_module, "model_for", lambda config: model_threads.append(threading.get_ident()) or real_model_for(config))

    class Tally:  # stands in for the driver's Tally actor
        class add:
            @staticmethod
            def remote(*_):
                pass

    worker = ColorizeWorker(_config(weights, "max_frames=3"), threads=1, log_level="WARNING")
    callers = [threading.Thread(target=worker.load)]
    callers += [threading.Thread(target=worker.colorize, args=(job, 1, "testsrc:64x48", [parse_sink("null")], Tally()))
                for job in range(2)]
    for caller in callers:  # one after another, each on a new thread, as Ray's pool may call them
        caller.start()
        caller.join()
    assert len(model_threads) == 3 and len(set(model_threads)) == 1
    assert model_threads[0] not in {caller.ident for caller in callers}


# --- on a local Ray -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="WARNING", object_store_memory=100 * 2**20)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Three drives, tiny weights, and each drive colorized by a single-machine run."""
    root = tmp_path_factory.mktemp("batch")
    torch.manual_seed(0)
    weights = save_weights(build_model(dict(TINY_COLORMAMBA)).eval(), root / "tiny.safetensors", info={"epoch": 1})
    (root / "drives").mkdir()
    for seed, (name, frames) in enumerate(SIZES.items()):
        _drive(root / "drives" / f"{name}.mp4", frames, seed)
    run(str(root / "drives" / "*.mp4"), [str(root / "single") + "/"], _config(weights))
    return root, weights


@pytest.mark.slow
def test_cluster_outputs_equal_single_machine_runs_with_counts_and_largest_first(ray_cluster, batch, tmp_path):
    root, weights = batch
    seen: list[list[tuple[str, int, int]]] = []
    summaries, totals = run_on_cluster(
        str(root / "drives" / "*.mp4"), [str(tmp_path / "out") + "/"], _config(weights),
        ClusterConfig(workers=2, threads=1),
        on_progress=lambda jobs: seen.append([(job.name, job.tries, job.done) for job in jobs]),
    )
    for name, frames in SIZES.items():
        cluster, single = _decoded(tmp_path / "out" / f"{name}.mp4"), _decoded(root / "single" / f"{name}.mp4")
        assert len(cluster) == frames and all(np.array_equal(a, b) for a, b in zip(cluster, single))
    assert sorted(os.listdir(tmp_path / "out")) == ["long.mp4", "middle.mp4", "short.mp4"]  # no partial, no marker left
    assert {s.name: s.written for s in summaries} == {f"{name}.mp4": frames for name, frames in SIZES.items()}
    assert (totals.files, totals.finished, totals.failed, totals.stopped) == (3, 3, 0, 0)
    assert totals.frames == sum(SIZES.values()) and totals.video_seconds == pytest.approx(sum(SIZES.values()) / 25)
    first = dict((name, tries) for name, tries, _ in seen[0])
    assert first["long.mp4"] == first["middle.mp4"] == 1 and first["short.mp4"] == 0  # largest first, two workers
    assert sorted(seen[-1]) == sorted((f"{name}.mp4", 1, frames) for name, frames in SIZES.items())


@pytest.mark.slow
def test_a_killed_worker_has_its_file_retried_elsewhere_and_completed(ray_cluster, batch, tmp_path):
    root, weights = batch
    killed = []

    def kill_long_once(jobs: list[Job]) -> None:
        job = next(job for job in jobs if job.name == "long.mp4")
        if not killed and job.tries == 1 and job.done >= 1 and job.summary is None:
            os.kill(job.worker_pid, signal.SIGKILL)
            killed.append(job.done)

    summaries, totals = run_on_cluster(
        str(root / "drives" / "*.mp4"), [str(tmp_path / "out") + "/"], _config(weights),
        ClusterConfig(workers=2, threads=1, tries=2), on_progress=kill_long_once,
    )
    assert killed, "the long file finished before the callback could kill its worker"
    assert (totals.finished, totals.failed) == (3, 0)
    retried = _decoded(tmp_path / "out" / "long.mp4")
    assert len(retried) == SIZES["long"]
    assert all(np.array_equal(a, b) for a, b in zip(retried, _decoded(root / "single" / "long.mp4")))
    assert sorted(os.listdir(tmp_path / "out")) == ["long.mp4", "middle.mp4", "short.mp4"]  # the dead try's partial removed


@pytest.mark.slow
def test_files_that_fail_every_try_are_reported_while_the_others_finish(ray_cluster, batch, tmp_path):
    root, weights = batch
    drives = tmp_path / "drives"
    drives.mkdir()
    for name in SIZES:
        (drives / f"{name}.mp4").symlink_to(root / "drives" / f"{name}.mp4")
    whole = fragmented_mp4(tmp_path / "whole.mp4", 75)
    (drives / "cut.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # truncated: an input error

    def kill_long_always(jobs: list[Job]) -> None:
        job = next(job for job in jobs if job.name == "long.mp4")
        if job.summary is None and job.error is None and job.done >= 1 and job.worker_pid:
            try:
                os.kill(job.worker_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    with pytest.raises(ClusterError, match=r"^2 of 4 files failed") as error:
        run_on_cluster(str(drives / "*"), [str(tmp_path / "out") + "/"], _config(weights),
                       ClusterConfig(workers=2, threads=1, tries=2), on_progress=kill_long_always)
    message = str(error.value)
    assert "long.mp4: its worker died" in message and "failed 2 tries" in message
    assert "cut.mp4: " in message and "truncated video" in message
    out = sorted(os.listdir(tmp_path / "out"))
    assert "middle.mp4" in out and "short.mp4" in out and "long.mp4" not in out
    assert any(name.startswith("long.partial") for name in out)  # what the dead tries wrote stays, as partial
    assert len(_decoded(tmp_path / "out" / "short.mp4")) == SIZES["short"]


@pytest.mark.slow
def test_ctrl_c_stops_the_batch_leaving_finished_files_and_partial_ones_named_partial(batch, tmp_path):
    """The command line, as a user runs it: a local Ray started for the run, Ctrl-C to the group."""
    root, weights = batch
    drives = tmp_path / "drives"
    drives.mkdir()
    _drive(drives / "quick.mp4", 5, 1)
    _drive(drives / "endless.mp4", 5000, 2)  # minutes at the workers' pace: still under way
    # Ctrl-C raises KeyboardInterrupt as in a terminal, also when the tests run under `cmd &`
    # (a shell ignores SIGINT in background jobs, and Python keeps an inherited SIG_IGN)
    interactive = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "sys.argv[0] = 'nirstream'; runpy.run_module('nirstream.stream.cli', run_name='__main__')")
    command = [sys.executable, "-c", interactive, "run", "--source", str(drives / "*.mp4"),
               "--sink", str(tmp_path / "out") + "/", "--weights", str(weights), "--cluster", "ray",
               "--workers", "2", "--worker-threads", "1", "--set", "engine.precision=fp32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_ADDRESS": "", "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    # wait for the state to interrupt in, however long a busy machine takes to get there
    deadline = time.monotonic() + 900
    while not ((tmp_path / "out" / "quick.mp4").exists() and (tmp_path / "out" / "endless.partial.mp4").exists()):
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the batch never reached one finished file and one under way"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert sorted(os.listdir(tmp_path / "out")) == ["endless.partial.mp4", "quick.mp4"]
    assert len(_decoded(tmp_path / "out" / "quick.mp4")) == 5
    assert 0 < len(_decoded(tmp_path / "out" / "endless.partial.mp4")) < 2000
    assert "1 of 2 files finished, 1 stopped" in err
