"""Weighted sum of loss terms, built from the YAML ``loss:`` mapping.

A spec maps a term name to its weight, or to ``{weight: w, <option>: value, ...}``::

    loss:
      l1: 1.0
      ms_ssim: 0.2
      histogram: {weight: 0.5, bins: 32, distance: chi2}
      vgg: {weight: 0.1, weights_path: ~/models/vgg19-dcbb9e9d.pth}
      semantic: {weight: 0.1, taps: [1, 2, 3]}

A term's options are its class's constructor arguments; anything else is a ConfigError
that names the key and the allowed ones.
"""

import inspect
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from nirstream.core.errors import ConfigError
from nirstream.core.losses.color import ColourfulnessLoss, CosineLoss, HSVLoss
from nirstream.core.losses.combined import CombinedLoss
from nirstream.core.losses.histogram import HistogramLoss
from nirstream.core.losses.lab import ABL1Loss, ABMSELoss
from nirstream.core.losses.perceptual import VGGPerceptualLoss
from nirstream.core.losses.pixel import PixelL1Loss, PixelMSELoss
from nirstream.core.losses.semantic import SemanticFeatureLoss
from nirstream.core.losses.structural import MSSSIMLoss
from nirstream.core.losses.term import LossTerm

LOSS_TERMS: dict[str, type[LossTerm]] = {
    "mse": PixelMSELoss,
    "l1": PixelL1Loss,
    "cosine": CosineLoss,
    "ms_ssim": MSSSIMLoss,
    "hsv": HSVLoss,
    "colourfulness": ColourfulnessLoss,
    "histogram": HistogramLoss,
    "vgg": VGGPerceptualLoss,
    "semantic": SemanticFeatureLoss,
    "combined": CombinedLoss,
    "ab_mse": ABMSELoss,
    "ab_l1": ABL1Loss,
}


class CompositeLoss(nn.Module):
    """``total = Σ weight · term``; returns the total (for backward) and each unweighted term.

    Move it to the training device with ``.to(device)`` (the VGG network and windows are
    buffers or frozen parameters). It holds no trainable state: do not checkpoint it.
    """

    def __init__(self, terms: Mapping[str, LossTerm], weights: Mapping[str, float]) -> None:
        super().__init__()
        if set(terms) != set(weights):
            raise ValueError(f"terms {sorted(terms)} and weights {sorted(weights)} name different losses")
        self.terms = nn.ModuleDict(terms)
        self.weights = {name: float(weights[name]) for name in terms}

    @property
    def required_outputs(self) -> set[str]:
        """Model outputs the terms read, e.g. ``{"rgb", "hsv"}``."""
        return {key for term in self.terms.values() for key in term.needs}

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> tuple[Tensor, dict[str, float]]:
        """``(total, {term: unweighted value})``; one host sync for all the logged values."""
        self._check_outputs(pred, target_rgb)
        values = {name: term(pred, target_rgb) for name, term in self.terms.items()}
        total = sum(self.weights[name] * value for name, value in values.items())
        logged = torch.stack([value.detach().float() for value in values.values()]).tolist()
        return total, dict(zip(values, logged))

    def _check_outputs(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> None:
        for name, term in self.terms.items():
            for key in term.needs:
                if key not in pred:
                    raise ConfigError(
                        f"loss term '{name}' needs the model output '{key}', which this model does not "
                        f"produce (outputs: {', '.join(sorted(pred))}); remove '{name}' from the loss"
                    )
                shape = pred[key].shape
                if shape[0] != target_rgb.shape[0] or shape[-2:] != target_rgb.shape[-2:]:
                    raise ValueError(
                        f"model output '{key}' has shape {tuple(shape)}, the target "
                        f"{tuple(target_rgb.shape)}"
                    )


def _options_of(term: type[LossTerm]) -> list[str]:
    return [name for name in inspect.signature(term.__init__).parameters if name != "self"]


def _weight_and_options(name: str, entry: Any) -> tuple[float, dict[str, Any]]:
    if isinstance(entry, Mapping):
        options = dict(entry)
        if "weight" not in options:
            raise ConfigError(f"loss term '{name}' needs a 'weight' (e.g. {name}: {{weight: 1.0}})")
        weight = options.pop("weight")
    else:
        weight, options = entry, {}
    is_number = isinstance(weight, (int, float)) and not isinstance(weight, bool)
    if not (is_number and math.isfinite(weight) and weight >= 0):
        raise ConfigError(f"loss term '{name}' weight must be a finite number >= 0, got {weight!r}")
    return float(weight), options


def build_loss(spec: Mapping[str, Any]) -> CompositeLoss:
    """The composite loss a ``{term: weight | {weight: w, **options}}`` mapping describes."""
    allowed_terms = ", ".join(LOSS_TERMS)
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(
            f"loss: expected a mapping of term name to weight, e.g. {{l1: 1.0}}; allowed terms: {allowed_terms}"
        )
    terms: dict[str, LossTerm] = {}
    weights: dict[str, float] = {}
    for name, entry in spec.items():
        if name not in LOSS_TERMS:
            raise ConfigError(f"unknown loss term '{name}'; allowed: {allowed_terms}")
        weight, options = _weight_and_options(name, entry)
        allowed_options = _options_of(LOSS_TERMS[name])
        for option in options:
            if option not in allowed_options:
                raise ConfigError(
                    f"unknown option '{option}' for loss term '{name}'; allowed: "
                    f"{', '.join(['weight', *allowed_options])}"
                )
        terms[name] = LOSS_TERMS[name](**options)
        weights[name] = weight
    return CompositeLoss(terms, weights)
