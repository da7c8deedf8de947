"""Evaluation on paired data with the VCIP 2020 protocol, and the contact sheet.

Each image is colorized whole (batch 1, any size) and scored 8-bit against 8-bit ground truth
(:mod:`nirstream.core.metrics`); the means are over images, as the challenge reported them.
Training validation and ``nirstream eval`` both go through :func:`score_images`. FID over the
whole set is added when local Inception weights are given (:mod:`nirstream.core.metrics.fid`).
"""

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from nirstream.core.data import PairedDataset, write_image
from nirstream.core.metrics import image_metrics
from nirstream.core.metrics.fid import FID_UNAVAILABLE, FIDAccumulator

METRICS = ("psnr", "ssim", "ae")
"""The comparative figures of the VCIP protocol: training validates and selects on these."""
COLOUR = ("colorfulness", "colorfulness_truth")
"""Reported beside them: how colourful the output is, and its ground truth."""


@dataclass
class ScoredImage:
    """One evaluated pair: its metrics and, when kept for the contact sheet, the images."""

    name: str
    metrics: dict[str, float]
    images: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # NIR, prediction, truth


@dataclass
class EvalReport:
    images: list[ScoredImage] = field(default_factory=list)
    fid: float | None = None  # None: no Inception weights were given

    @property
    def mean(self) -> dict[str, float]:
        """Means over the images, and ``colorfulness_ratio``: the outputs' mean colourfulness
        over the ground truth's (1: as colourful as the truth)."""
        return _means(self.images)

    @property
    def groups(self) -> dict[str, dict[str, float]]:
        """Means per category, where names are ``<category>_<id>`` of more than one category."""
        by_group: dict[str, list[ScoredImage]] = {}
        for scored in self.images:
            by_group.setdefault(scored.name.rsplit("_", 1)[0], []).append(scored)
        if len(by_group) < 2 or any("_" not in s.name for s in self.images):
            return {}
        return {group: _means(images) for group, images in sorted(by_group.items())}

    def table(self) -> str:
        """A per-image, per-category and mean table for the terminal."""
        groups = self.groups
        width = max([len(s.name) for s in self.images] + [len(f"mean {g}") for g in groups] + [5])
        lines = [f"{'image':<{width}}  {'PSNR dB':>8}  {'SSIM':>6}  {'AE deg':>7}  {'colourful':>9}  {'truth':>6}"]
        rows = [(s.name, s.metrics) for s in self.images]
        rows += [(f"mean {group}", means) for group, means in groups.items()]
        rows += [("mean", self.mean)]
        for i, (name, m) in enumerate(rows):
            if i == len(self.images):
                lines.append("-" * len(lines[0]))
            lines.append(
                f"{name:<{width}}  {m['psnr']:8.2f}  {m['ssim']:6.4f}  {m['ae']:7.3f}  "
                f"{m['colorfulness']:9.1f}  {m['colorfulness_truth']:6.1f}"
            )
        lines.append(f"colourfulness of the outputs over the ground truth's: {self.mean['colorfulness_ratio']:.2f}")
        lines.append(f"FID over {len(self.images)} images: {self.fid:.2f}" if self.fid is not None else FID_UNAVAILABLE)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        fid = {"fid": self.fid} if self.fid is not None else {"fid": None, "fid_note": FID_UNAVAILABLE}
        groups = {"groups": self.groups} if self.groups else {}
        return {"mean": self.mean, **groups, **fid, "images": [{"name": s.name, **s.metrics} for s in self.images]}


def _means(images: list[ScoredImage]) -> dict[str, float]:
    means = {k: float(np.mean([s.metrics[k] for s in images])) for k in (*METRICS, *COLOUR)}
    means["colorfulness_ratio"] = means["colorfulness"] / max(means["colorfulness_truth"], 1e-9)
    return means


@torch.inference_mode()
def score_images(
    model: nn.Module,
    items: Iterable[dict[str, Any]],
    device: torch.device,
    *,
    keep_images: int = 0,
    on_pair: Callable[[Tensor, Tensor], None] | None = None,
) -> Iterator[ScoredImage]:
    """Colorize and score each item (``{"nir", "rgb", "name"}``, unbatched or batch 1).

    The first ``keep_images`` results carry 8-bit NIR, prediction and truth for a contact sheet;
    ``on_pair(prediction, truth)`` sees every pair (set-level metrics such as FID).
    """
    was_training = model.training
    model.eval()
    try:
        for index, item in enumerate(items):
            nir, rgb = _batched(item["nir"]).to(device), _batched(item["rgb"]).to(device)
            prediction = model(nir).float()
            metrics = {k: float(v[0]) for k, v in image_metrics(prediction, rgb).items()}
            if on_pair is not None:
                on_pair(prediction, rgb)
            name = item["name"] if isinstance(item["name"], str) else item["name"][0]
            images = None
            if index < keep_images:
                images = tuple(_to_uint8(t) for t in (nir.expand(-1, 3, -1, -1), prediction, rgb))
            yield ScoredImage(name, metrics, images)
    finally:
        model.train(was_training)


def evaluate(
    model: nn.Module,
    dataset: PairedDataset,
    device: torch.device,
    *,
    keep_images: int = 0,
    fid_weights: str | Path | None = None,
) -> EvalReport:
    """Score every pair of ``dataset`` (full images, no augmentation); FID too with ``fid_weights``."""
    fid = FIDAccumulator(fid_weights, device) if fid_weights is not None else None
    items = (dataset[i] for i in range(len(dataset)))
    scored = list(score_images(model, items, device, keep_images=keep_images, on_pair=fid.add if fid else None))
    return EvalReport(scored, fid.value() if fid else None)


def write_report(report: EvalReport, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return path


def contact_sheet(report: EvalReport, path: str | Path, max_width: int | None = None) -> Path:
    """An image grid (PNG, or JPEG by the file ending), one row per kept image: NIR | prediction |
    ground truth, labelled; shrunk to ``max_width`` pixels wide when given (large photographs)."""
    rows = []
    for scored in (s for s in report.images if s.images is not None):
        tiles = []
        for label, image in zip(("NIR", "nirstream", "ground truth"), scored.images):
            tile = np.ascontiguousarray(image)
            if label == "nirstream":
                label = f"{label} {scored.metrics['psnr']:.1f} dB"
            _label(tile, f"{scored.name}  {label}" if label == "NIR" else label)
            tiles.append(tile)
        rows.append(np.concatenate(_pad_to_height(tiles), axis=1))
    if not rows:
        raise ValueError("no images were kept for the contact sheet (keep_images=0)")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    sheet = np.concatenate(rows, axis=0)
    if max_width is not None and sheet.shape[1] > max_width:
        height = round(sheet.shape[0] * max_width / sheet.shape[1])
        sheet = cv2.resize(sheet, (max_width, height), interpolation=cv2.INTER_AREA)
    write_image(path, sheet)
    return Path(path)


def _batched(t: Tensor) -> Tensor:
    return t if t.dim() == 4 else t.unsqueeze(0)


def _to_uint8(t: Tensor) -> np.ndarray:
    return (t[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def _label(tile: np.ndarray, text: str) -> None:
    scale = max(tile.shape[1] / 640, 0.35)
    for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(tile, text, (4, int(16 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def _pad_to_height(tiles: list[np.ndarray]) -> list[np.ndarray]:
    height = max(t.shape[0] for t in tiles)
    return [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
