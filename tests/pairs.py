"""Synthetic registered NIR/RGB pairs on disk, and a quick training config on them."""

from pathlib import Path

import cv2
import numpy as np

from nirstream.core.config import apply_overrides, bind
from nirstream.core.train import TrainConfig

from conftest import TINY_COLORMAMBA

SIZE = 48


def scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A NIR image (tilted gradient, sine texture, blurred grain) and its RGB, uint8.

    The RGB is a fixed nonlinear colour map of the NIR (red rises as NIR^1.5, green rises,
    blue falls), so it is learnable from the NIR alone but far from both a constant colour
    and the gray NIR.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = 0.5 + 0.6 * (np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5))
    fx, fy, phase = rng.uniform(2.5, 5.0), rng.uniform(2.5, 5.0), rng.uniform(0, 2 * np.pi)
    texture = 0.1 * np.sin(2 * np.pi * fx * x + phase) * np.sin(2 * np.pi * fy * y)
    grain = 0.08 * cv2.GaussianBlur(rng.standard_normal((SIZE, SIZE)), (0, 0), 1.5)
    nir = np.clip(gradient + texture + grain, 0.02, 0.98)
    rgb = np.stack([0.05 + 0.9 * nir**1.5, 0.2 + 0.6 * nir, 0.85 - 0.6 * nir], axis=-1)
    return np.round(nir * 255).astype(np.uint8), np.round(rgb * 255).astype(np.uint8)


def write_pairs(root: Path, split: str, named_seeds: list[tuple[str, int]]) -> None:
    for folder in ("nir", "rgb"):
        (root / split / folder).mkdir(parents=True, exist_ok=True)
    for name, seed in named_seeds:
        nir, rgb = scene(seed)
        cv2.imwrite(str(root / split / "nir" / f"{name}.png"), nir)
        cv2.imwrite(str(root / split / "rgb" / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def make_config(root: Path, out_dir: Path, name: str, *overrides: str) -> TrainConfig:
    """A quick CPU run on the tiny ColorMamba; ``overrides`` are ``--set`` style strings."""
    data = {
        "model": dict(TINY_COLORMAMBA),  # a copy: overrides apply in place, and must not reach other tests
        "data": {"root": str(root), "batch_size": 2, "workers": 0, "augment": {"crop": 32, "hflip": True}},
        "loss": {"l1": 1.0},
        "optim": {"lr": 5e-3, "epochs": 2, "schedule": "cosine", "warmup_epochs": 1},
        "run": {"out_dir": str(out_dir), "name": name, "device": "cpu", "log_every": 1},
    }
    return bind(TrainConfig, apply_overrides(data, list(overrides)))
