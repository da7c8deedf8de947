"""A run's records: its folder, metrics.csv / metrics.json, and the settings a resume changed.

The trainer (rank 0) rewrites these after every epoch from its whole history, so a resumed run
never keeps rows from epochs it redid.
"""

import csv
import json
from pathlib import Path
from typing import Any

from loguru import logger


def new_run_dir(out_dir: Path, name: str) -> Path:
    """``out_dir/name``, or ``name-2``, ``name-3``... when taken: a new run never overwrites an old one."""
    candidate, number = out_dir / name, 1
    while candidate.exists() and any(candidate.iterdir()):
        number += 1
        candidate = out_dir / f"{name}-{number}"
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate


def write_metrics(history: list[dict[str, Any]], run_dir: Path) -> None:
    (run_dir / "metrics.json").write_text(json.dumps(history, indent=1) + "\n")
    train_columns = sorted({key for row in history for key in row if key.startswith("train_")})
    val_columns = list(dict.fromkeys(key for row in history for key in row if key.startswith("val_")))
    columns = ["epoch", "lr", *train_columns, *val_columns, "seconds"]
    with (run_dir / "metrics.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(history)


def warn_changed(saved: dict[str, Any], current: dict[str, Any], where: str = "") -> None:
    """Log the settings that differ from the checkpoint's: the run continues with the new ones."""
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        path = f"{where}.{key}" if where else key
        if isinstance(old, dict) and isinstance(new, dict):
            warn_changed(old, new, path)
        elif _plain(old) != _plain(new):
            logger.warning("resuming with {} = {!r} (the checkpoint had {!r})", path, new, old)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
