"""A PNG of the per-epoch training curves, redrawn after every epoch.

Drawn on a bare Agg canvas (no pyplot, no global backend switch), so it works on headless
machines and in DataLoader-forking processes alike.
"""

import math
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

PANELS = (
    ("train loss", "train_"),
    ("val PSNR (dB)", "psnr"),
    ("val SSIM", "ssim"),
    ("val angular error (deg)", "ae"),
)
"""Panel title and what it plots: every ``train_*`` loss term, or one metric of every
validation set (``val_<metric>`` for the main set, ``val_<set>_<metric>`` for the others)."""


def plot_curves(history: list[dict[str, Any]], path: str | Path) -> Path:
    """Draw one panel per metric group against the epoch and save the figure as a PNG."""
    figure = Figure(figsize=(12, 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    for axes, (title, key) in zip(figure.subplots(1, len(PANELS), sharex=True), PANELS):
        keys = _series(history, key)
        plotted: list[float] = []
        for name, label in keys:
            points = [(row["epoch"], row[name]) for row in history if _finite(row.get(name))]
            if points:
                epochs, values = zip(*points)
                axes.plot(epochs, values, marker="o", markersize=3, label=label)
                plotted += values
        if key == "train_" and len(keys) > 1 and plotted and min(plotted) > 0:
            axes.set_yscale("log")  # loss terms of different sizes (pixel, GAN) stay readable together
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if len(keys) > 1:
            axes.legend(fontsize="small")
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path


def _series(history: list[dict[str, Any]], key: str) -> list[tuple[str, str]]:
    """``(row key, legend label)`` of every curve a panel draws."""
    names = sorted({k for row in history for k in row})
    if key == "train_":
        return [(name, name.removeprefix(key)) for name in names if name.startswith(key)]
    others = [n for n in names if n.startswith("val_") and n.endswith(f"_{key}") and n != f"val_{key}"]
    return [(f"val_{key}", "val"), *((name, name.removeprefix("val_").removesuffix(f"_{key}")) for name in others)]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
