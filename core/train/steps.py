"""The pieces of one optimiser step that the generator and the discriminator share."""

from contextlib import AbstractContextManager, nullcontext

import torch
from torch.optim import Optimizer


def optimizer_step(optimizer: Optimizer, scaler: torch.amp.GradScaler, grad_clip: float | None) -> None:
    """Unscale, clip the global gradient norm, step (skipped by the scaler on inf/NaN), update the scale."""
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    scaler.step(optimizer)
    scaler.update()


def autocast(device_type: str, dtype: torch.dtype | None) -> AbstractContextManager:
    return torch.autocast(device_type, dtype=dtype) if dtype is not None else nullcontext()


def amp_dtype(enabled: bool, device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it (no loss scaling needed), else fp16; none on the CPU."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
