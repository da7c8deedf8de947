"""The trainer: it learns, resumes bit for bit, writes its run folder, rejects bad input, runs under DDP."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from nirstream.core.config import to_dict
from nirstream.core.data import Augment, AugmentedPairs, PairedFolderDataset
from nirstream.core.errors import ConfigError, DataError, WeightsError
from nirstream.core.metrics import image_metrics, psnr
from nirstream.core.train import Trainer, load_train_config, lr_schedule, train
from nirstream.core.train.checkpoint import load_checkpoint, save_checkpoint
from nirstream.core.train.config import OptimConfig
from nirstream.core.train.distributed import DistContext, SeededShardSampler
from nirstream.core.weights import load_model, read_metadata

from conftest import REPOSITORY, TINY_COLORMAMBA
from pairs import make_config, write_pairs


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight other processes for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory) -> tuple[Path, Path]:
    """Two scenes, trained on 32 px crops for 48 steps and validated on the whole 48 px images."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("overfit")
    write_pairs(root / "data", "train", [(f"scene{s}_copy{c}", s) for s in range(2) for c in range(8)])
    write_pairs(root / "data", "val", [(f"scene{s}", s) for s in range(2)])
    config = make_config(root / "data", root / "runs", "overfit", "optim.epochs=6", "loss.hsv=0.2")
    run_dir = train(config)
    torch.set_num_threads(threads)
    return root / "data", run_dir


def history(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "metrics.json").read_text())


def test_overfits_two_images_far_beyond_constant_and_gray_predictions(overfit_run):
    data_root, run_dir = overfit_run
    rows = history(run_dir)
    best = max(row["val_psnr"] for row in rows[1:])
    val = PairedFolderDataset(data_root, "val")
    rgb = torch.stack([val[i]["rgb"] for i in range(len(val))])
    nir = torch.stack([val[i]["nir"] for i in range(len(val))])
    mean_colour = psnr(rgb.mean(dim=(0, 2, 3), keepdim=True).expand_as(rgb), rgb).mean().item()
    gray = psnr(nir.expand_as(rgb), rgb).mean().item()
    assert mean_colour < 18.0 and gray < 18.0  # the task is not trivial
    assert best > 25.0
    assert best > max(mean_colour, gray) + 8.0
    assert best > rows[0]["val_psnr"] + 8.0  # improvement over the untrained model (epoch 0)


def test_run_folder_has_metrics_plot_weights_and_checkpoint(overfit_run):
    data_root, run_dir = overfit_run
    for name in ("metrics.csv", "metrics.json", "curves.png", "best.safetensors", "last.safetensors", "checkpoint.pt", "train.log"):
        assert (run_dir / name).is_file(), name
    rows = history(run_dir)
    assert [row["epoch"] for row in rows] == list(range(7))
    assert {"train_l1", "train_hsv", "train_total", "val_psnr", "val_ssim", "val_ae", "lr"} <= set(rows[-1])
    csv_lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,lr,train_hsv,train_l1,train_total,val_psnr,val_ssim,val_ae")
    assert len(csv_lines) == 1 + len(rows)
    assert cv2.imread(str(run_dir / "curves.png")) is not None
    assert "epoch 6/6" in (run_dir / "train.log").read_text()


def test_best_weights_reproduce_the_recorded_validation_metrics(overfit_run):
    data_root, run_dir = overfit_run
    rows = history(run_dir)
    best_row = max(rows[1:], key=lambda row: row["val_psnr"])
    info = read_metadata(run_dir / "best.safetensors")["info"]
    assert info["epoch"] == best_row["epoch"]
    assert info["config"]["model"] == TINY_COLORMAMBA
    model = load_model(run_dir / "best.safetensors")
    val = PairedFolderDataset(data_root, "val")
    with torch.no_grad():
        scores = [image_metrics(model(item["nir"][None]), item["rgb"][None]) for item in val]
    for metric in ("psnr", "ssim", "ae"):
        recomputed = float(np.mean([s[metric].item() for s in scores]))
        assert recomputed == pytest.approx(best_row[f"val_{metric}"], abs=1e-9)
        assert info["metrics"][f"val_{metric}"] == best_row[f"val_{metric}"]


def test_last_weights_equal_the_checkpointed_model(overfit_run):
    _, run_dir = overfit_run
    model = load_model(run_dir / "last.safetensors")
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    assert checkpoint["epoch"] == 6
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, checkpoint["model"][name]), name


def test_moving_average_is_what_is_validated_and_saved(tmp_path):
    write_pairs(tmp_path / "data", "train", [(f"pair{i}", i) for i in range(4)])
    write_pairs(tmp_path / "data", "val", [(f"val{i}", 10 + i) for i in range(2)])
    run_dir = train(make_config(tmp_path / "data", tmp_path / "runs", "ema", "optim.epochs=2", "optim.ema_decay=0.8"))
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    saved = load_model(run_dir / "last.safetensors").state_dict()
    average = {name.removeprefix("module."): t for name, t in checkpoint["average"].items() if name != "n_averaged"}
    assert checkpoint["average"]["n_averaged"] > 1
    assert all(torch.equal(saved[name], average[name]) for name in saved)
    assert any(not torch.equal(saved[name], checkpoint["model"][name]) for name in saved)
    val = PairedFolderDataset(tmp_path / "data", "val")
    with torch.no_grad():
        model = load_model(run_dir / "last.safetensors").eval()
        scores = [image_metrics(model(val[i]["nir"][None]).clamp(0, 1), val[i]["rgb"][None]) for i in range(2)]
    recorded = history(run_dir)[-1]["val_psnr"]
    assert np.mean([s["psnr"].item() for s in scores]) == pytest.approx(recorded, abs=1e-4)


def test_ema_decay_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match="ema_decay"):
        OptimConfig(ema_decay=1.0)


@pytest.mark.slow
def test_interrupted_and_resumed_run_matches_uninterrupted_run_bit_for_bit(tmp_path, monkeypatch):
    write_pairs(tmp_path / "data", "train", [(f"pair{i}", i) for i in range(4)])
    write_pairs(tmp_path / "data", "val", [(f"val{i}", 10 + i) for i in range(2)])
    settings = (
        "optim.epochs=2",
        "data.workers=2",  # augmentation must not depend on which worker loads an item
        "data.augment.vflip=true",
        "data.augment.contrast=0.3",
        "data.augment.scale=[0.8, 1.2]",
        "optim.warmup_epochs=0.5",
        "gan.enabled=true",
        "gan.discriminator={base_channels: 8, num_layers: 2}",
        "loss.hsv=0.2",
        "optim.ema_decay=0.9",
    )
    straight = train(make_config(tmp_path / "data", tmp_path / "runs", "straight", *settings))

    interrupted = make_config(tmp_path / "data", tmp_path / "runs", "interrupted", *settings)
    train_epoch = Trainer._train_epoch

    def stop_in_epoch_2(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return train_epoch(self, epoch)

    monkeypatch.setattr(Trainer, "_train_epoch", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted)
    monkeypatch.undo()
    run_dir = tmp_path / "runs" / "interrupted"
    assert load_checkpoint(run_dir / "checkpoint.pt")["epoch"] == 1
    assert train(interrupted, resume=run_dir / "checkpoint.pt") == run_dir

    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(run_dir / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["average"][k], b["average"][k]) for k in a["average"])
    discriminator_a, discriminator_b = a["adversary"]["discriminator"], b["adversary"]["discriminator"]
    assert all(torch.equal(discriminator_a[k], discriminator_b[k]) for k in discriminator_a)
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] > 0

    def without_timing(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert without_timing(history(straight)) == without_timing(history(run_dir))
    assert len(history(run_dir)) == 3 and "train_gan_d" in history(run_dir)[2]
    assert history(run_dir)[2]["train_total"] != history(run_dir)[1]["train_total"]


def test_augmentation_depends_on_seed_and_epoch_only_not_on_workers(tmp_path):
    write_pairs(tmp_path / "data", "train", [(f"pair{i}", i) for i in range(5)])
    dataset = AugmentedPairs(PairedFolderDataset(tmp_path / "data", "train"), Augment(crop=24, vflip=True, contrast=0.3))
    context = DistContext(rank=0, world_size=1, device=torch.device("cpu"))

    def epoch_batches(epoch: int, workers: int) -> list[torch.Tensor]:
        sampler = SeededShardSampler(dataset, context, seed=7)
        sampler.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=workers)
        return [batch["nir"] for batch in loader]

    in_process, with_workers = epoch_batches(3, workers=0), epoch_batches(3, workers=2)
    assert all(torch.equal(a, b) for a, b in zip(in_process, with_workers, strict=True))
    other_epoch = epoch_batches(4, workers=0)
    assert not all(torch.equal(a, b) for a, b in zip(in_process, other_epoch, strict=True))


def test_lr_schedule_warms_up_then_decays():
    cosine = lr_schedule(OptimConfig(epochs=10, warmup_epochs=1, min_lr_ratio=0.01), steps_per_epoch=4)
    assert cosine(0) == pytest.approx(0.25) and cosine(3) == pytest.approx(1.0)
    assert cosine(4) == pytest.approx(1.0)
    assert cosine(20) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * 16 / 36)))
    assert cosine(39) < 0.02
    step = lr_schedule(OptimConfig(epochs=10, schedule="step", step_epochs=3, gamma=0.5), steps_per_epoch=4)
    assert [step(s) for s in (0, 11, 12, 24)] == [1.0, 1.0, 0.5, 0.25]


def test_unknown_config_key_is_a_config_error_naming_it(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("model: colormamba-lite\noptim:\n  lr: 1.0e-3\n  epohcs: 3\n")
    with pytest.raises(ConfigError, match=r"'optim\.epohcs'.*epochs"):
        load_train_config(path)
    path.write_text("optim: {lr: 1.0e-3}\n")
    with pytest.raises(ConfigError, match=r"'data\.augment\.crp'.*crop"):
        load_train_config(path, ["data.augment.crp=64"])
    with pytest.raises(ConfigError, match="schedule"):
        load_train_config(path, ["optim.schedule=linear"])
    assert load_train_config(path, ["optim.epochs=3"]).optim.epochs == 3


def test_bundled_train_configs_load_with_overrides():
    lite = load_train_config("colormamba-lite", ["data.root=/elsewhere"])
    assert lite.data.root == "/elsewhere" and lite.model == "colormamba-lite"
    assert load_train_config("colormamba-base").gan.enabled
    # YAML 1.1 reads "1e-3" (no dot) as a string: a float key still takes it.
    assert load_train_config("colormamba-lite", ["optim.lr=1e-3"]).optim.lr == 1e-3
    with pytest.raises(ConfigError, match="optim.lr"):
        load_train_config("colormamba-lite", ["optim.lr=fast"])


def test_truncated_or_foreign_checkpoint_is_a_weights_error(overfit_run, tmp_path):
    data_root, run_dir = overfit_run
    good = (run_dir / "checkpoint.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    config = make_config(data_root, tmp_path / "runs", "resumed")
    with pytest.raises(WeightsError, match="truncated"):
        train(config, resume=truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(WeightsError, match="not a nirstream training checkpoint"):
        load_checkpoint(foreign)
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(WeightsError):
        load_checkpoint(tmp_path / "text.pt")


def test_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"epoch": 1}, path)

    def fail_half_way(state, target):  # the disk fills up after part of the file is written
        Path(target).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", fail_half_way)
    with pytest.raises(OSError):
        save_checkpoint({"epoch": 2}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary file left


def test_missing_data_root_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="data.root"):
        train(make_config(tmp_path / "absent", tmp_path / "runs", "x"))


DDP_SCRIPT = """
import json, sys
import torch
from nirstream.core.config import bind
from nirstream.core.train import TrainConfig, Trainer, distributed

torch.set_num_threads(1)
config = bind(TrainConfig, json.loads(sys.argv[1]))
context = distributed.setup(config.run.device)
trainer = Trainer(config, context)
initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
trainer.fit()
torch.save({"initial": initial, "trained": trainer.model.state_dict(), "run_dir": str(trainer.run_dir),
            "discriminator": trainer.adversary.discriminator.state_dict()},
           f"{sys.argv[2]}/rank{context.rank}.pt")
distributed.teardown(context)
"""


@pytest.mark.parametrize(
    "losses",
    [
        pytest.param(["loss.hsv=0.2"], id="with-hsv-branch"),
        pytest.param([], id="rgb-only-loss", marks=pytest.mark.slow),  # HSV head unused: DDP must not wait for it
    ],
)
def test_two_process_ddp_on_gloo_ends_with_identical_weights(tmp_path, losses):
    write_pairs(tmp_path / "data", "train", [(f"pair{i}", i) for i in range(6)])
    write_pairs(tmp_path / "data", "val", [(f"val{i}", 10 + i) for i in range(3)])
    config = make_config(
        tmp_path / "data", tmp_path / "runs", "ddp", "optim.epochs=1", *losses,
        "gan.enabled=true", "gan.discriminator={base_channels: 8, num_layers: 2}",
    )
    script = tmp_path / "ddp_worker.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(script), json.dumps(to_dict(config)), str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert rank0["run_dir"] == rank1["run_dir"]
    assert all(torch.equal(rank0["trained"][k], rank1["trained"][k]) for k in rank0["trained"])
    assert all(torch.equal(rank0["discriminator"][k], rank1["discriminator"][k]) for k in rank0["discriminator"])
    assert not all(torch.equal(rank0["trained"][k], rank0["initial"][k]) for k in rank0["initial"])
    rows = history(Path(rank0["run_dir"]))
    assert [row["epoch"] for row in rows] == [0, 1] and "train_gan_d" in rows[1]
    assert not (tmp_path / "runs" / "ddp-2").exists()  # only rank 0 made a run folder



@pytest.mark.slow
@pytest.mark.data
def test_bundled_lite_config_trains_on_the_vcip_pairs(vcip_root, tmp_path, monkeypatch):
    """The bundled recipe, model and data (all three folders where present), cut to a few steps."""
    monkeypatch.chdir(REPOSITORY)  # the recipe's roots are relative to the checkout
    overrides = [] if (vcip_root.parent / "epfl_scenes").is_dir() else ["data.more_train=[]", "data.more_val=[]"]
    config = load_train_config(
        "colormamba-lite",
        # the recipe's one warm-up epoch ramps the rate over the six steps: at its full rate from
        # the first step, random weights overshoot (11.8 -> 9.6-9.8 dB, with or without the prior)
        [f"data.root={vcip_root}", "optim.epochs=1", "run.max_steps_per_epoch=6",
         "data.batch_size=4", "data.workers=2", "run.device=cpu", f"run.out_dir={tmp_path}",
         "optim.ema_decay=null",  # an average over ~1000 steps would hide what six steps learned
         *overrides],
    )
    rows = history(train(config))
    assert [row["epoch"] for row in rows] == [0, 1]
    assert rows[1]["val_psnr"] > rows[0]["val_psnr"] + 0.3  # six steps already beat the untrained model


# --- several training and validation sets, selection, --init ---------------------------------


def _flat_pairs(root: Path, named_seeds: list[tuple[str, int]]) -> Path:
    """Pairs in ``root/nir`` and ``root/rgb`` directly (``split: null``), as the EPFL folders are."""
    write_pairs(root.parent, root.name, named_seeds)
    return root


def test_more_train_and_more_val_sets_train_validate_and_select_on_the_weighted_score(tmp_path):
    write_pairs(tmp_path / "main", "train", [(f"m{i}", i) for i in range(4)])
    write_pairs(tmp_path / "main", "val", [("v0", 10)])
    scenes = _flat_pairs(tmp_path / "scenes", [(f"street_{i:04d}", 20 + i) for i in range(6)])
    held_out = ["street_0001", "street_0004"]
    config = make_config(
        tmp_path / "main", tmp_path / "runs", "mixed", "optim.epochs=2", "data.val_weight=1.0",
        f"data.more_train=[{{name: scenes, root: {scenes}, exclude: {held_out}, repeat: 3}}]",
        f"data.more_val=[{{name: scenes, root: {scenes}, only: {held_out}, weight: 3.0}}]",
    )
    trainer = Trainer(config, DistContext(0, 1, torch.device("cpu")))
    trained_names = [pair.name for part in trainer.loader.dataset.parts for pair in part.dataset.pairs]
    assert sorted(trained_names) == ["m0", "m1", "m2", "m3", "street_0000", "street_0002", "street_0003", "street_0005"]
    assert len(trainer.loader.dataset) == 4 + 4 * 3
    run_dir = trainer.fit()
    rows = history(run_dir)
    for row in rows:
        assert row["val_score"] == pytest.approx((row["val_psnr"] + 3.0 * row["val_scenes_psnr"]) / 4.0)
        assert {"val_scenes_ssim", "val_scenes_ae"} <= set(row)
    best = max(rows[1:], key=lambda row: row["val_score"])
    assert read_metadata(run_dir / "best.safetensors")["info"]["epoch"] == best["epoch"]
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert "val_scenes_psnr" in header and "val_score" in header
    assert "scenes PSNR" in (run_dir / "train.log").read_text()


def test_set_sections_are_bound_strictly(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'data.more_val\[0\].weigth'"):
        make_config(tmp_path, tmp_path, "x", "data.more_val=[{name: a, root: ., weigth: 2}]")
    with pytest.raises(ConfigError, match="lower-case identifier"):
        make_config(tmp_path, tmp_path, "x", "data.more_val=[{name: Held Out, root: .}]")
    with pytest.raises(ConfigError, match="a repeats"):
        make_config(tmp_path, tmp_path, "x", "data.more_train=[{name: a, root: .}, {name: a, root: .}]")


def test_missing_more_train_folder_is_named(tmp_path):
    write_pairs(tmp_path / "main", "train", [("m0", 0)])
    write_pairs(tmp_path / "main", "val", [("v0", 1)])
    config = make_config(tmp_path / "main", tmp_path / "runs", "x", f"data.more_train=[{{name: gone, root: {tmp_path / 'gone'}}}]")
    with pytest.raises(DataError, match="data.more_train gone: root .*gone not found"):
        train(config)


def test_init_starts_from_weights_and_refuses_another_model(tmp_path, overfit_run):
    data_root, run_dir = overfit_run
    best = max(history(run_dir)[1:], key=lambda row: row["val_psnr"])
    config = make_config(data_root, tmp_path, "finetune", "optim.epochs=1", "loss.hsv=0.2", f"run.init={run_dir / 'best.safetensors'}")
    finetuned = train(config)
    rows = history(finetuned)
    # epoch 0 scores the model before any step: exactly the weights it started from
    assert rows[0]["val_psnr"] == pytest.approx(best["val_psnr"], abs=1e-4)
    # what it continues is recorded when it starts, for the hours behind a release
    info = read_metadata(finetuned / "best.safetensors")["info"]
    assert info["continues"]["epoch"] == best["epoch"]
    # the hours behind a file count its start's, so a chain of --init runs adds up
    first = read_metadata(run_dir / "best.safetensors")["info"]["training_seconds_total"]
    assert first == pytest.approx(sum(row["seconds"] for row in history(run_dir)[: best["epoch"] + 1]))
    assert info["continues"]["training_seconds_total"] == pytest.approx(first)
    assert info["training_seconds_total"] == pytest.approx(first + sum(row["seconds"] for row in rows[: info["epoch"] + 1]))

    other = make_config(data_root, tmp_path, "other", "model.ngf=12", f"run.init={run_dir / 'best.safetensors'}")
    with pytest.raises(WeightsError, match=r"holds another model than the run builds \(ngf: file 8, run 12\)"):
        train(other)
    missing = make_config(data_root, tmp_path, "missing", "run.init=no-such-model")
    with pytest.raises(WeightsError, match="neither a weights file nor a shipped model"):
        train(missing)


@pytest.mark.slow
def test_init_grows_a_file_by_a_semantic_prior_that_trains_frozen_then_slowly(tmp_path, overfit_run):
    """A file without the prior grows into a model with one: it starts out as the file (epoch 0
    scores the same), its encoder starts from ImageNet, stays frozen at ratio 0 and moves at a
    small ratio; any other difference from the file is still refused."""
    from nirstream.core.models.efficientnet_lite import imagenet_weights_path

    data_root, run_dir = overfit_run
    best = max(history(run_dir)[1:], key=lambda row: row["val_psnr"])
    init = f"run.init={run_dir / 'best.safetensors'}"
    imagenet = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    key = "_blocks.3._depthwise_conv.weight"

    frozen = train(make_config(data_root, tmp_path, "frozen", "optim.epochs=1", "model.encoder=efficientnet-lite0", init))
    assert history(frozen)[0]["val_psnr"] == pytest.approx(best["val_psnr"], abs=1e-4)
    grown = load_model(frozen / "last.safetensors")
    assert torch.equal(grown.semantic.encoder.state_dict()[key], imagenet[key])
    assert any(p.abs().sum() > 0 for p in grown.semantic.to_a[-1][-1].parameters())  # the projections learned

    config = make_config(data_root, tmp_path, "slow", "model.encoder=efficientnet-lite0", init, "optim.encoder_lr_ratio=0.1")
    trainer = Trainer(config, DistContext(0, 1, torch.device("cpu")))
    rates = [group["lr"] for group in trainer.optimizer.param_groups]
    assert rates[1] == pytest.approx(rates[0] * 0.1)  # the schedule scales both groups alike
    assert [group["initial_lr"] for group in trainer.optimizer.param_groups] == pytest.approx([5e-3, 5e-4])
    tuned = load_model(trainer.fit() / "last.safetensors")
    assert not torch.equal(tuned.semantic.encoder.state_dict()[key], imagenet[key])

    other = make_config(data_root, tmp_path, "other", "model.encoder=efficientnet-lite0", "model.ngf=12", init)
    with pytest.raises(WeightsError, match=r"holds another model than the run builds \(encoder: file None, run 'efficientnet-lite0', ngf: file 8"):
        train(other)


def test_a_test_split_can_be_neither_trained_nor_selected_on(tmp_path):
    scenes = f"{{name: s, root: {tmp_path}, only: [a, b]}}"
    fine = make_config(tmp_path, tmp_path, "x", f"data.test=[{scenes}]",
                       f"data.more_train=[{{name: t, root: {tmp_path}, exclude: [a, b, c]}}]",
                       f"data.more_val=[{{name: v, root: {tmp_path}, only: [c]}}]")
    assert [t.only for t in fine.data.test] == [["a", "b"]]
    with pytest.raises(ConfigError, match=r"data.more_train t trains on test pairs of data.test s \(b\)"):
        make_config(tmp_path, tmp_path, "x", f"data.test=[{scenes}]", f"data.more_train=[{{name: t, root: {tmp_path}, exclude: [a]}}]")
    with pytest.raises(ConfigError, match="data.more_val v validates on test pairs"):
        make_config(tmp_path, tmp_path, "x", f"data.test=[{scenes}]", f"data.more_val=[{{name: v, root: {tmp_path}, only: [b, c]}}]")
    with pytest.raises(ConfigError, match="data.test s: name its pairs with 'only'"):
        make_config(tmp_path, tmp_path, "x", f"data.test=[{{name: s, root: {tmp_path}}}]")
    with pytest.raises(ConfigError, match="data.val_split validates on test pairs"):
        make_config(tmp_path, tmp_path, "x", f"data.test=[{{name: s, root: {tmp_path}, split: val, only: [a]}}]")
    bundled = load_train_config("colormamba-lite").data  # the shipped recipe passes its own check
    assert len(bundled.test[0].only) == 13 and len(bundled.more_val[0].only) == 10


@pytest.mark.slow
def test_resume_refuses_to_switch_the_encoder_between_frozen_and_training(tmp_path, overfit_run):
    data_root, run_dir = overfit_run
    init = f"run.init={run_dir / 'best.safetensors'}"
    frozen = train(make_config(data_root, tmp_path, "frozen", "optim.epochs=1", "model.encoder=efficientnet-lite0", init))
    config = make_config(data_root, tmp_path, "frozen", "optim.epochs=2", "model.encoder=efficientnet-lite0", init,
                         "optim.encoder_lr_ratio=0.1")
    with pytest.raises(ConfigError, match="disagree on whether the pretrained encoder trains"):
        train(config, resume=frozen / "checkpoint.pt")
    resumed = train(make_config(data_root, tmp_path, "frozen", "optim.epochs=2", "model.encoder=efficientnet-lite0", init),
                    resume=frozen / "checkpoint.pt")
    assert [row["epoch"] for row in history(resumed)] == [0, 1, 2]
    # a plain model differing only in encoder_scale does not "grow": it is another model
    with pytest.raises(WeightsError, match="encoder_scale: file 2, run 4"):
        train(make_config(data_root, tmp_path, "scale", "model.encoder_scale=4", init))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_training_after_its_step_with_a_checkpoint_and_weights(tmp_path, sig):
    """A real training process, signalled once its steps are under way: it finishes the step,
    keeps a checkpoint that resumes at the next step and the weights so far, says how to
    resume, and exits non-zero; the run then continues from it to the end."""
    import yaml

    write_pairs(tmp_path / "data", "train", [(f"pair{i}", i) for i in range(4)])
    write_pairs(tmp_path / "data", "val", [("val0", 10)])
    config = {
        "model": dict(TINY_COLORMAMBA),
        "data": {"root": str(tmp_path / "data"), "batch_size": 1, "workers": 0, "augment": {"crop": 32}},
        "loss": {"l1": 1.0},
        "optim": {"lr": 1e-3, "epochs": 1000, "warmup_epochs": 0},  # never ends by itself
        "run": {"out_dir": str(tmp_path / "runs"), "name": "stopped", "device": "cpu", "log_every": 1},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen([sys.executable, "-m", "nirstream.stream.cli", "train", "--config", str(path)],
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = []
    try:
        for line in process.stderr:  # wait (without a clock) until steps are being taken
            lines.append(line)
            if " step " in line and "loss" in line:
                break
        process.send_signal(sig)
        lines += process.stderr.readlines()
        process.wait(timeout=120)
    finally:
        process.kill()
    stderr = "".join(lines)
    run_dir = tmp_path / "runs" / "stopped"
    assert process.returncode == 130, stderr
    assert "--resume" in stderr and str(run_dir / "checkpoint.pt") in stderr
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    assert checkpoint["epoch"] * 4 + checkpoint["step"] >= 1  # the steps taken are in it
    assert (run_dir / "best.safetensors").is_file() and (run_dir / "last.safetensors").is_file()
    load_model(run_dir / "best.safetensors")  # a whole weights file, evaluable as the README says
    config["optim"]["epochs"] = checkpoint["epoch"] + 1
    resumed = train(bind_config(config), resume=run_dir / "checkpoint.pt")
    assert load_checkpoint(resumed / "checkpoint.pt")["epoch"] == checkpoint["epoch"] + 1


def bind_config(data: dict):
    from nirstream.core.config import bind
    from nirstream.core.train.config import TrainConfig

    return bind(TrainConfig, data)


def test_data_loading_workers_ignore_the_signals_the_main_process_handles():
    """Ctrl-C goes to the whole process group: a worker must not die of it before the trainer stops."""
    script = ("import os, signal\n"
              "from nirstream.core.train.stop import ignore_stop_signals\n"
              "ignore_stop_signals(0)\n"
              "os.kill(os.getpid(), signal.SIGINT)\n"
              "print('still here')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "still here" in result.stdout


def test_init_prunes_vss_blocks_and_keeps_every_other_tensor(tmp_path):
    """A run with fewer VSS blocks per stage than its init file starts from the file's other
    tensors exactly (the stage's first blocks kept, the rest skipped); more blocks, or another
    change beside the pruning, is still another model."""
    from nirstream.core.models import build_model
    from nirstream.core.train.init import load_init_weights
    from nirstream.core.weights import save_weights

    from conftest import TINY_COLORMAMBA

    torch.manual_seed(0)
    full = build_model({**TINY_COLORMAMBA, "depths": [1, 2], "decoder_depths": [1]})
    path = save_weights(full, tmp_path / "full.safetensors")
    pruned = build_model({**TINY_COLORMAMBA, "depths": [1, 1], "decoder_depths": [0]})
    assert load_init_weights(pruned, str(path)) is False
    kept = full.state_dict()
    assert all(torch.equal(tensor, kept[key]) for key, tensor in pruned.state_dict().items())
    assert len(kept) > len(pruned.state_dict())
    with pytest.raises(WeightsError, match=r"depths: file \[1, 2\], run \[1, 3\]"):
        load_init_weights(build_model({**TINY_COLORMAMBA, "depths": [1, 3], "decoder_depths": [1]}), str(path))
    with pytest.raises(WeightsError, match="ngf: file 8, run 12"):
        load_init_weights(build_model({**TINY_COLORMAMBA, "depths": [1, 1], "decoder_depths": [1], "ngf": 12}), str(path))


def test_init_grows_a_file_by_a_luma_gate_and_a_prior_starting_as_the_file(tmp_path):
    """A file without the luma gate grows into a model with one (and a prior, both at once):
    every file tensor kept, the new model's output the file's; another change beside is refused."""
    from nirstream.core.models import build_model
    from nirstream.core.train.init import load_init_weights
    from nirstream.core.weights import save_weights

    torch.manual_seed(0)
    plain = build_model(dict(TINY_COLORMAMBA)).eval()
    path = save_weights(plain, tmp_path / "plain.safetensors")
    gated = build_model({**TINY_COLORMAMBA, "luma_gate": True}).eval()
    assert load_init_weights(gated, str(path)) is False  # no prior grew: nothing pretrained to load
    nir = torch.rand(1, 1, 40, 48)
    with torch.no_grad():
        torch.testing.assert_close(gated(nir), load_model(path)(nir))
    both = build_model({**TINY_COLORMAMBA, "luma_gate": True, "encoder": "efficientnet-lite0"})
    assert load_init_weights(both, str(path)) is True
    # a file with a prior, grown by the gate alone (how the shipped file grows): nothing to load
    with_prior = save_weights(build_model({**TINY_COLORMAMBA, "encoder": "efficientnet-lite0"}).eval(),
                              tmp_path / "prior.safetensors")
    gated_prior = build_model({**TINY_COLORMAMBA, "luma_gate": True, "encoder": "efficientnet-lite0"}).eval()
    assert load_init_weights(gated_prior, str(with_prior)) is False
    with torch.no_grad():
        torch.testing.assert_close(gated_prior(nir), load_model(with_prior)(nir))
    with pytest.raises(WeightsError, match=r"encoder: file 'efficientnet-lite0', run None"):  # a prior is never dropped
        load_init_weights(gated, str(with_prior))
    with pytest.raises(WeightsError, match=r"luma_gate: file False, run True, ngf: file 8, run 12"):
        load_init_weights(build_model({**TINY_COLORMAMBA, "luma_gate": True, "ngf": 12}), str(path))
    gated_path = save_weights(gated, tmp_path / "gated.safetensors")
    with pytest.raises(WeightsError, match=r"luma_gate: file True, run False"):  # a gate is never dropped
        load_init_weights(build_model(dict(TINY_COLORMAMBA)), str(gated_path))
