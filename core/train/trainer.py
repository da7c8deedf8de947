"""The training loop: epochs of Adam steps, validation on whole images, and the run folder's files.

Each epoch draws shuffled, augmented crops (order and augmentation depend only on the seed
and the epoch), takes one optimiser step per batch (autocast and loss scaling on CUDA,
gradient clipping, an optional LSGAN term), then validates the model on every whole
validation image with the VCIP metrics: the main validation split and every ``more_val`` set,
each under its own name. Epoch 0 validates the untrained (or ``run.init``) model, so the
improvement is measured against a baseline. After every epoch rank 0 rewrites, in the run
folder, ``metrics.csv`` / ``metrics.json`` (rows rebuilt from the history, so a resumed run
never keeps rows from epochs it redid), ``curves.png`` and ``last.safetensors``, writes
``best.safetensors`` when ``val_score`` (the weighted PSNR of the validation sets) improves,
and ``checkpoint.pt`` every ``run.checkpoint_every`` epochs and at the end.
"""

import gc
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from loguru import logger
from torch import Tensor, nn
from torch.optim import Adam
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from nirstream.core.config import to_dict
from nirstream.core.data import PairedDataset
from nirstream.core.errors import ConfigError, WeightsError
from nirstream.core.losses import build_loss
from nirstream.core.evaluate import COLOUR, METRICS, score_images
from nirstream.core.models import build_model, complete_config, load_model_config, set_scan_backend
from nirstream.core.train import distributed
from nirstream.core.train.gan import Adversary
from nirstream.core.train.records import duration, new_run_dir, warn_changed, write_metrics
from nirstream.core.train.steps import amp_dtype, autocast, optimizer_step
from nirstream.core.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from nirstream.core.train.stop import StopRequest, ignore_stop_signals
from nirstream.core.train.config import OptimConfig, TrainConfig
from nirstream.core.train.datasets import training_mixture, validation_sets
from nirstream.core.train.init import init_provenance, load_init_weights
from nirstream.core.train.distributed import DistContext
from nirstream.core.train.plots import plot_curves
from nirstream.core.weights import save_weights

CHECKPOINT_NAME = "checkpoint.pt"


def train(config: TrainConfig, resume: Path | None = None) -> Path:
    """Train as ``config`` says, or continue the run whose ``checkpoint.pt`` is ``resume``; return the run folder.

    Under ``torchrun`` every process calls this; they share the work and rank 0 writes.
    """
    context = distributed.setup(config.run.device)
    trainer = None
    try:
        trainer = Trainer(config, context, resume)
        return trainer.fit()
    finally:
        # The DDP module holds the process group: free it (and the reference cycles it sits in)
        # while the interpreter is alive, or gloo's threads outlive it and abort the exit
        del trainer
        gc.collect()
        distributed.teardown(context)


def lr_schedule(optim: OptimConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The factor on ``optim.lr`` after ``step`` optimiser steps: linear warm-up, then the schedule."""
    total = optim.epochs * steps_per_epoch
    warmup = round(optim.warmup_epochs * steps_per_epoch)
    step_every = optim.step_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if optim.schedule == "constant":
            return 1.0
        if optim.schedule == "step":
            return optim.gamma ** (step // step_every)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return optim.min_lr_ratio + (1.0 - optim.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class Trainer:
    """One training run: builds the model, data, optimiser and run folder, then :meth:`fit` trains it.

    ``train`` is the usual entry point; the class is public so that a caller managing its own
    process group (or a test) can reach :attr:`model` after :meth:`fit`.
    """

    def __init__(self, config: TrainConfig, context: DistContext, resume: Path | None = None) -> None:
        self.config = config
        self.context = context
        self.device = context.device
        self._stop = StopRequest()
        self._skip_steps = 0  # steps of the next epoch a stopped run already took (resume)
        self._steps_done = 0
        checkpoint = load_checkpoint(resume) if resume is not None else None
        _seed_everything(config.run.seed)

        self.model = build_model(_model_config(config.model))
        set_scan_backend(self.model, config.run.scan_backend)  # before the average copies it
        self.continues = None  # the released weights this run started from, for the hours behind it
        if checkpoint is None:
            grown = config.run.init is not None and load_init_weights(self.model, config.run.init)
            if config.run.init is None or grown:
                self.model.load_pretrained()
            if config.run.init is not None:
                self.continues = init_provenance(config.run.init)
        if config.optim.encoder_lr_ratio == 0:  # before DDP, which records what needs a gradient
            for parameter in self.model.pretrained_parameters():
                parameter.requires_grad_(False)
        self.model = self.model.to(self.device)
        self.loss = build_loss(config.loss).to(self.device)
        aux = self.loss.required_outputs != {"rgb"}
        self.forward_for_loss = distributed.wrap_model(
            _ForwardForLoss(self.model, aux), context, find_unused_parameters=not aux
        )

        train_set, self.val_sets = training_mixture(config.data), validation_sets(config.data)
        self.sampler = distributed.SeededShardSampler(train_set, context, config.run.seed)
        self.loader = DataLoader(
            train_set,
            batch_size=config.data.batch_size,
            sampler=self.sampler,
            num_workers=config.data.workers,
            # workers live for the whole run, so each keeps its cache of decoded pairs (data.cache);
            # crops and flips come from each item's own seed, never from a worker's state
            persistent_workers=config.data.workers > 0,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator(),  # reseeded per epoch: worker seeds depend on (seed, epoch) only
            worker_init_fn=ignore_stop_signals,  # Ctrl-C reaches the workers too: the main process stops them
        )
        self.steps_per_epoch = min(len(self.loader), config.run.max_steps_per_epoch or len(self.loader))

        schedule = lr_schedule(config.optim, self.steps_per_epoch)
        optim = config.optim
        self.optimizer = Adam(
            _parameter_groups(self.model, optim), lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay
        )
        self.scheduler = LambdaLR(self.optimizer, schedule)
        self.average = (
            AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(optim.ema_decay), use_buffers=True)
            if optim.ema_decay is not None
            else None
        )
        self.amp_dtype = amp_dtype(config.run.amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.adversary = (
            Adversary(config.gan, optim, schedule, context, self.amp_dtype) if config.gan.enabled else None
        )

        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"epoch": None, "val_score": -math.inf}
        if checkpoint is not None:
            self._restore(checkpoint)
            self.run_dir = Path(resume).parent
        else:
            run_dir = new_run_dir(Path(config.run.out_dir), config.run.name) if context.is_main else None
            self.run_dir = distributed.broadcast_object(run_dir, context)

    def fit(self) -> Path:
        """Train the remaining epochs (every scan on ``run.scan_backend``) and return the run folder."""
        log_sink = logger.add(self.run_dir / "train.log", level="INFO") if self.context.is_main else None
        self._stop.install(self.context.world_size == 1)
        try:
            self._log_start()
            if not self.history:
                started = time.perf_counter()
                self._record({"epoch": 0, "lr": self._lr(), **self._validate()}, started)
            for epoch in range(self.epoch + 1, self.config.optim.epochs + 1):
                started = time.perf_counter()
                train_terms = self._train_epoch(epoch)
                if self._stop.requested:
                    self._stop_cleanly(epoch)
                self.epoch = epoch
                self._record({"epoch": epoch, "lr": self._lr(), **train_terms, **self._validate()}, started)
                if epoch % self.config.run.checkpoint_every == 0 or epoch == self.config.optim.epochs:
                    self._save_checkpoint()
            if self.best["epoch"] is not None:
                logger.info("best epoch {}: val score {:.3f} dB in {}", self.best["epoch"], self.best["val_score"], self.run_dir)
        except KeyboardInterrupt:
            if not self._stop.requested and (self.run_dir / CHECKPOINT_NAME).is_file():
                logger.warning("interrupted; continue from the last checkpoint with --resume {}", self.run_dir / CHECKPOINT_NAME)
            raise
        finally:
            self._stop.uninstall()
            if log_sink is not None:
                logger.remove(log_sink)
        return self.run_dir

    def _seconds_total(self) -> float:
        """The training behind the weights now, with that of the file this run started from."""
        before = (self.continues or {}).get("training_seconds_total") or 0.0
        return before + sum(r["seconds"] for r in self.history)

    def _stop_cleanly(self, epoch: int) -> None:
        """SIGINT or SIGTERM came: after the step in flight, keep a checkpoint that resumes at
        the next step and the weights so far, say where they are, and stop (KeyboardInterrupt)."""
        self._save_checkpoint(step=self._steps_done)
        if self.context.is_main:
            info = {"epoch": epoch - 1, "stopped_at": {"epoch": epoch, "step": self._steps_done},
                    "config": to_dict(self.config), "training_seconds_total": self._seconds_total()}
            if self.continues is not None:
                info["continues"] = self.continues
            save_weights(self.result, self.run_dir / "last.safetensors", info=info)
            best = self.run_dir / "best.safetensors"
            if not best.is_file():  # no epoch finished: the weights so far are the best there are
                save_weights(self.result, best, info=info)
            logger.warning(
                "stopped at epoch {} step {}/{}: weights in {} (best.safetensors, last.safetensors); continue "
                "with: nirstream train --config <config> --resume {}",
                epoch, self._steps_done, self.steps_per_epoch, self.run_dir, self.run_dir / CHECKPOINT_NAME)
        raise KeyboardInterrupt

    @property
    def result(self) -> nn.Module:
        """The weights that are validated and saved: the moving average when ``optim.ema_decay`` is set."""
        return self.model if self.average is None else self.average.module

    # --- one epoch ---------------------------------------------------------------------

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch; the mean of each loss term over its steps (and ranks)."""
        seed = self.config.run.seed
        self.sampler.set_epoch(epoch)
        self.loader.generator.manual_seed(distributed.derived_seed(seed, epoch, -1))
        self.model.train()
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        bar = tqdm(
            total=self.steps_per_epoch,
            desc=f"epoch {epoch}/{self.config.optim.epochs}",
            unit="step",
            leave=False,
            dynamic_ncols=True,
            disable=not (self.context.is_main and sys.stderr.isatty()),
        )
        started = time.perf_counter()
        skip, self._skip_steps = self._skip_steps, 0  # steps a stopped run already took in this epoch
        self._steps_done = skip
        bar.update(skip)
        batches = iter(self.loader)
        with bar:
            for step in range(self.steps_per_epoch):
                if self._stop.requested:  # before the next batch is asked for
                    break
                batch = next(batches, None)
                if batch is None:
                    break
                if step < skip:
                    continue
                nir = batch["nir"].to(self.device, non_blocking=True)
                rgb = batch["rgb"].to(self.device, non_blocking=True)
                terms = self._train_step(nir, rgb, step, epoch)
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value
                    counts[name] = counts.get(name, 0) + 1
                self._steps_done = step + 1
                bar.update()
                bar.set_postfix(loss=f"{terms['total']:.4f}")
                if bar.disable and (step + 1) % self.config.run.log_every == 0:
                    self._log_step(epoch, step + 1, terms["total"], time.perf_counter() - started)
        names = sorted(sums)
        totals = distributed.all_reduce_sum(
            torch.tensor([sums[n] for n in names] + [counts[n] for n in names], dtype=torch.float64), self.context
        )
        return {f"train_{n}": float(totals[i] / totals[len(names) + i]) for i, n in enumerate(names)}

    def _train_step(self, nir: Tensor, rgb: Tensor, step: int, epoch: int) -> dict[str, float]:
        """One generator step (and, with a GAN, its discriminator step); the unweighted loss terms.

        Before ``gan.start_epoch`` the generator pre-trains on its reconstruction losses alone
        and the discriminator waits: a critic facing an untrained generator wins at once and
        its gradients then say little.
        """
        adversary = self.adversary if epoch >= self.config.gan.start_epoch else None
        if self.adversary is not None and adversary is None:
            self.adversary.scheduler.step()  # its schedule spans the whole run, like the generator's
        with autocast(self.device.type, self.amp_dtype):
            outputs = self.forward_for_loss(nir)
        outputs = {name: value.float() for name, value in outputs.items()}  # losses in fp32
        total, terms = self.loss(outputs, rgb)
        if adversary is not None:
            adversarial = adversary.generator_loss(nir, outputs["rgb"])
            total = total + self.config.gan.weight * adversarial
            terms["gan_g"] = float(adversarial.detach())
        terms["total"] = float(total.detach())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        optimizer_step(self.optimizer, self.scaler, self.config.optim.grad_clip)
        self.scheduler.step()
        if self.average is not None:
            self.average.update_parameters(self.model)
        if adversary is not None:
            d_loss = adversary.train_step(step, nir, rgb, outputs["rgb"].detach(), self.config.optim.grad_clip)
            if d_loss is not None:
                terms["gan_d"] = d_loss
        return terms

    def _validate(self) -> dict[str, float]:
        """Mean VCIP metrics of every validation set (whole images, batch 1, fp32, all ranks' shares)
        as ``val_<metric>`` (the main set) and ``val_<set>_<metric>``, and their ``val_score``."""
        row: dict[str, float] = {}
        score = weights = 0.0
        for name, dataset, weight in self.val_sets:
            means = self._validate_set(dataset)
            prefix = "val_" if name is None else f"val_{name}_"
            row.update({f"{prefix}{metric}": value for metric, value in means.items()})
            score, weights = score + weight * means["psnr"], weights + weight
        row["val_score"] = score / weights if weights else row["val_psnr"]
        return row

    def _validate_set(self, dataset: PairedDataset) -> dict[str, float]:
        share = Subset(dataset, range(self.context.rank, len(dataset), self.context.world_size))
        names = (*METRICS, *COLOUR)
        sums = torch.zeros(len(names) + 1, dtype=torch.float64)
        for scored in score_images(self.result, (share[i] for i in range(len(share))), self.device):
            sums += torch.tensor([scored.metrics[name] for name in names] + [1.0], dtype=torch.float64)
        sums = distributed.all_reduce_sum(sums, self.context)
        means = {name: float(sums[i] / sums[-1]) for i, name in enumerate(names)}
        colour, truth = (means.pop(name) for name in COLOUR)
        means["colorfulness_ratio"] = colour / max(truth, 1e-9)  # muted colour shows as < 1
        return means

    # --- results -----------------------------------------------------------------------

    def _record(self, row: dict[str, Any], started: float) -> None:
        """Add an epoch's row to the history, log it, and (rank 0) rewrite the run folder's files."""
        row["seconds"] = round(time.perf_counter() - started, 3)
        self.history.append(row)
        epoch = row["epoch"]
        # With a GAN, only epochs that trained adversarially compete: the pre-training stage
        # usually scores higher PSNR, but it is not the model the recipe asks for.
        first = self.config.gan.start_epoch if self.adversary is not None else 1
        improved = epoch >= first and row["val_score"] > self.best["val_score"]
        if improved:
            self.best = {"epoch": epoch, **{key: value for key, value in row.items() if key.startswith("val_")}}
        train_part = f"train loss {row['train_total']:.4f} | " if "train_total" in row else ""
        more = "".join(
            f" | {name} PSNR {row[f'val_{name}_psnr']:.3f} SSIM {row[f'val_{name}_ssim']:.4f} AE {row[f'val_{name}_ae']:.3f}"
            for name, _, _ in self.val_sets
            if name is not None
        )
        score = f" | score {row['val_score']:.3f}" if more else ""
        logger.info(
            "epoch {}/{}: {}val PSNR {:.3f} SSIM {:.4f} AE {:.3f} colourfulness {:.2f}{}{}{} | {:.1f} s",
            epoch,
            self.config.optim.epochs,
            train_part,
            row["val_psnr"],
            row["val_ssim"],
            row["val_ae"],
            row["val_colorfulness_ratio"],
            more,
            score,
            " (best)" if improved else "",
            row["seconds"],
        )
        if not self.context.is_main:
            return
        write_metrics(self.history, self.run_dir)
        plot_curves(self.history, self.run_dir / "curves.png")
        if epoch > 0:
            info = {"epoch": epoch, "metrics": {k: row[k] for k in row if k.startswith("val_")}, "config": to_dict(self.config)}
            if self.continues is not None:
                info["continues"] = self.continues
            # the training behind this file in all, so that a run continuing it (--init) counts it
            info["training_seconds_total"] = self._seconds_total()
            save_weights(self.result, self.run_dir / "last.safetensors", info=info)
            if improved:
                save_weights(self.result, self.run_dir / "best.safetensors", info=info)

    def _log_start(self) -> None:
        model_size = sum(p.numel() for p in self.model.parameters())
        logger.info(
            "{} {} epoch {}: {} ({:.2f} M parameters) on {}{}, {} processes, {} steps/epoch of {} crops; run folder {}",
            "resuming" if self.history else "training",
            self.config.run.name,
            self.epoch + 1,
            self.model.config.get("arch", type(self.model).__name__),
            model_size / 1e6,
            self.device,
            f" with {self.amp_dtype} autocast" if self.amp_dtype is not None else "",
            self.context.world_size,
            self.steps_per_epoch,
            self.config.data.batch_size,
            self.run_dir,
        )

    def _log_step(self, epoch: int, steps_done: int, loss: float, elapsed: float) -> None:
        per_step = elapsed / steps_done
        remaining = (self.steps_per_epoch - steps_done) + (self.config.optim.epochs - epoch) * self.steps_per_epoch
        logger.info(
            "epoch {} step {}/{}: loss {:.4f} lr {:.3g} | {:.2f} s/step, ETA {}",
            epoch,
            steps_done,
            self.steps_per_epoch,
            loss,
            self._lr(),
            per_step,
            duration(per_step * remaining),
        )

    def _lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    # --- checkpoints -------------------------------------------------------------------

    def _save_checkpoint(self, step: int = 0) -> None:
        """``step``: steps already taken in the epoch after ``self.epoch`` (a run stopped mid-epoch)."""
        if not self.context.is_main:
            return
        state = {
            "epoch": self.epoch,
            "step": step,
            "model_config": self.model.config,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "average": self.average.state_dict() if self.average is not None else None,
            "adversary": self.adversary.state_dict() if self.adversary is not None else None,
            "best": dict(self.best),
            "continues": self.continues,
            "history": list(self.history),
            "config": to_dict(self.config),
            "rng": rng_state(),
        }
        save_checkpoint(state, self.run_dir / CHECKPOINT_NAME)

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        """Continue from a checkpoint's epoch: weights, optimiser, schedule, history and RNG states."""
        if complete_config(checkpoint["model_config"]) != self.model.config:
            raise WeightsError(
                f"the checkpoint was trained with model {checkpoint['model_config']}, the config builds {self.model.config}"
            )
        if (checkpoint["adversary"] is None) != (self.adversary is None):
            raise ConfigError("the checkpoint and the config disagree on gan.enabled; resume with the checkpoint's setting")
        frozen_then = checkpoint["config"]["optim"].get("encoder_lr_ratio", 0.0) == 0
        if self.model.pretrained_parameters() and frozen_then != (self.config.optim.encoder_lr_ratio == 0):
            raise ConfigError(
                "the checkpoint and the config disagree on whether the pretrained encoder trains "
                "(optim.encoder_lr_ratio 0 or not); resume with the checkpoint's setting, or start a new "
                "run from its weights with --init"
            )
        warn_changed(checkpoint["config"], to_dict(self.config))
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if self.average is not None and checkpoint.get("average") is not None:
            self.average.load_state_dict(checkpoint["average"])  # else it starts again from these weights
        if checkpoint["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(checkpoint["scaler"])
        if self.adversary is not None:
            self.adversary.load_state_dict(checkpoint["adversary"])
        self.epoch = checkpoint["epoch"]
        self._skip_steps = checkpoint.get("step", 0)
        self.history = list(checkpoint["history"])
        self.continues = checkpoint.get("continues")
        self.best = dict(checkpoint["best"])
        self.best.setdefault("val_score", self.best.get("val_psnr", -math.inf))  # checkpoints before val_score
        set_rng_state(checkpoint["rng"])


class _ForwardForLoss(nn.Module):
    """Runs the model's outputs the loss reads: ``forward_with_aux`` when it needs more than RGB.

    DistributedDataParallel synchronises gradients only for what runs through ``forward``, so
    the auxiliary outputs (ColorMamba's HSV map) must come from this module's forward.
    """

    def __init__(self, model: nn.Module, aux: bool) -> None:
        super().__init__()
        self.model = model
        self.aux = aux

    def forward(self, nir: Tensor) -> dict[str, Tensor]:
        return self.model.forward_with_aux(nir) if self.aux else {"rgb": self.model(nir)}


def _parameter_groups(model: nn.Module, optim: OptimConfig) -> list[dict[str, Any]]:
    """The model's own parameters at ``optim.lr``; its pretrained ones at ``lr * encoder_lr_ratio``,
    none of them when the ratio is 0 (the trainer has frozen them)."""
    pretrained = model.pretrained_parameters()
    ids = {id(p) for p in pretrained}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids]}]
    if pretrained and optim.encoder_lr_ratio > 0:
        groups.append({"params": pretrained, "lr": optim.lr * optim.encoder_lr_ratio})
    return groups


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _model_config(model: str | dict[str, Any]) -> dict[str, Any]:
    return dict(model) if isinstance(model, dict) else load_model_config(model)
