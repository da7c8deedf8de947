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
    ("val PSNR (dB)", "val_psnr"),
    ("val SSIM", "val_ssim"),
    ("val angular error (deg)", "val_ae"),
)
"""Panel title and the metrics-row key (or key prefix, ending in ``_``) it plots."""


def plot_curves(history: list[dict[str, Any]], path: str | Path) -> Path:
    """Draw one panel per metric group against the epoch and save the figure as a PNG."""
    figure = Figure(figsize=(12, 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    for axes, (title, key) in zip(figure.subplots(1, len(PANELS), sharex=True), PANELS):
        keys = sorted({k for row in history for k in row if k.startswith(key)}) if key.endswith("_") else [key]
        plotted: list[float] = []
        for name in keys:
            points = [(row["epoch"], row[name]) for row in history if _finite(row.get(name))]
            if points:
                epochs, values = zip(*points)
                axes.plot(epochs, values, marker="o", markersize=3, label=name.removeprefix(key) or name)
                plotted += values
        if len(keys) > 1 and plotted and min(plotted) > 0:
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


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
