"""The optional adversarial half of training: a conditional PatchGAN with its own optimiser.

``gan.enabled`` in a train config adds it; the trainer asks it for the generator's LSGAN term
and lets it take its own steps (:class:`Adversary`).
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from nirstream.core.errors import ConfigError
from nirstream.core.losses import lsgan_d_loss, lsgan_g_loss
from nirstream.core.models.patchgan import PatchGANDiscriminator
from nirstream.core.train import distributed
from nirstream.core.train.config import GanConfig, OptimConfig
from nirstream.core.train.distributed import DistContext
from nirstream.core.train.steps import autocast, optimizer_step

class Adversary:
    """The optional LSGAN half: a conditional PatchGAN with its own Adam, schedule and loss scaler.

    The generator's adversarial term is scored by the discriminator with its parameters
    frozen (and outside DDP: nothing of D is updated from it); D then takes one step on the
    real pair and the detached fake every ``d_every`` generator steps.
    """

    def __init__(
        self,
        gan: GanConfig,
        optim: OptimConfig,
        schedule: Callable[[int], float],
        context: DistContext,
        amp_dtype: torch.dtype | None,
    ) -> None:
        try:
            self.discriminator = PatchGANDiscriminator(**gan.discriminator).to(context.device)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"gan.discriminator: {exc}") from exc
        self.wrapped = distributed.wrap_model(self.discriminator, context)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=gan.d_lr or optim.lr, betas=gan.d_betas)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.scaler = torch.amp.GradScaler(context.device.type, enabled=amp_dtype == torch.float16)
        self.amp_dtype = amp_dtype
        self.device_type = context.device.type
        self.every = gan.d_every

    def generator_loss(self, nir: Tensor, fake_rgb: Tensor) -> Tensor:
        self.discriminator.requires_grad_(False)
        with autocast(self.device_type, self.amp_dtype):
            score = self.discriminator(nir, fake_rgb)
        return lsgan_g_loss(score.float())

    def train_step(self, step: int, nir: Tensor, real_rgb: Tensor, fake_rgb: Tensor, grad_clip: float | None) -> float | None:
        """Update D on this batch if it is D's turn; the schedule advances with every generator step."""
        loss = None
        if step % self.every == 0:
            self.discriminator.requires_grad_(True)
            with autocast(self.device_type, self.amp_dtype):
                real_score = self.wrapped(nir, real_rgb)
                fake_score = self.wrapped(nir, fake_rgb)
            d_loss = lsgan_d_loss(real_score.float(), fake_score.float())
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            optimizer_step(self.optimizer, self.scaler, grad_clip)
            loss = float(d_loss.detach())
        self.scheduler.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {
            "discriminator": self.discriminator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
