"""The quality report: shipped (or given) models on every set the project measures, beside baselines.

For each weights file, scored by :func:`nirstream.core.evaluate.evaluate` (the code behind
``nirstream eval``: whole images, 8-bit output against 8-bit ground truth):

- VCIP 2020 val (18 pairs), and the 15 of them SF-GPT published outputs for, beside SF-GPT's
  own scores on those images (``../shared/anchors``);
- the ``epfl_scenes`` test split the training config fixes by name (never trained or selected
  on) and its validation split, per category;
- the training-set fit: every 6th VCIP training pair, and the ``epfl_scenes`` pairs it trains on;
- colourfulness of the outputs over that of the ground truth, per set;
- cost: parameters, GFLOPs per 256² tile, CPU ms per 640×512 frame, fps of ``nirstream run``
  on the demo clip.

The gray-NIR baseline (the NIR frame itself on all three channels) is scored on every set.
Contact sheets go to ``runs/quality/<model>-val.png`` and ``<model>-scenes.jpg`` (one test
scene per category: indoor, old building, street, urban, water), to look at, never to commit:
they show the data sets' photographs, whose terms forbid shipping them.

    python benchmarks/quality.py [--models colormamba-lite] [--weights runs/x/best.safetensors ...]
"""

import argparse
import csv
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nirstream.core.assets import demo_clip, shipped_models, shipped_weights
from nirstream.core.data import PairedDataset, PairedFolderDataset
from nirstream.core.evaluate import EvalReport, contact_sheet, evaluate
from nirstream.core.models.cost import forward_flops
from nirstream.core.train import load_train_config
from nirstream.core.weights import load_model, read_metadata
from nirstream.stream.config import RunConfig
from nirstream.stream.run import run

from model_cost import FRAME, TILE, latency_ms
from results import update_section

SHEETS = Path(__file__).resolve().parents[1] / "runs" / "quality"  # ignored by git: the data's terms
ANCHORS = Path("../shared/anchors/sfgpt_vcip_val.csv")
SHEET_SCENES = ["indoor_0002", "oldbuilding_0002", "street_0005", "urban_0003", "water_0003"]
SCENES_SHEET_WIDTH = 1500  # the photographs are up to 1000 px wide: three of them a row, shrunk


class GrayNIR(nn.Module):
    """The baseline every colorizer must beat: the NIR frame itself as a gray RGB image."""

    def forward(self, nir: torch.Tensor) -> torch.Tensor:
        return nir.expand(-1, 3, -1, -1)


def measurement_sets(config_name: str) -> dict[str, PairedDataset]:
    """Every set the report scores, by label, built from the training config's own data lists."""
    data = load_train_config(config_name).data
    vcip = Path(data.root)
    (test,) = [s for s in data.test if s.name == "scenes_test"]
    (val,) = [s for s in data.more_val if s.name == "scenes_val"]
    (scenes_train,) = [s for s in data.more_train if s.name == "scenes"]
    with ANCHORS.open(newline="") as file:
        sfgpt = [Path(row["val_image"]).stem for row in csv.DictReader(file)]
    train = PairedFolderDataset(vcip, data.train_split, exclude=data.exclude)
    return {
        "VCIP val (18)": PairedFolderDataset(vcip, data.val_split),
        "SF-GPT's 15 val images": PairedFolderDataset(vcip, data.val_split, only=sfgpt),
        f"test: scenes ({len(test.only)})": PairedFolderDataset(test.root, test.split, only=test.only),
        f"val: scenes ({len(val.only)})": PairedFolderDataset(val.root, val.split, only=val.only),
        "fit: VCIP train, every 6th": PairedFolderDataset(vcip, data.train_split, only=train.names[::6]),
        "fit: scenes it trains on": PairedFolderDataset(scenes_train.root, scenes_train.split, exclude=scenes_train.exclude),
    }


def scenes_pairs(sets: dict[str, PairedDataset]) -> list:
    """The test split's scene pairs (the contact sheet takes one per category from them)."""
    return next(dataset for label, dataset in sets.items() if label.startswith("test")).pairs


def sfgpt_means() -> dict[str, float]:
    with ANCHORS.open(newline="") as file:
        rows = list(csv.DictReader(file))
    return {k: float(np.mean([float(r[f"sfgpt_dwt_{k}"]) for r in rows])) for k in ("psnr", "ssim", "ae")}


def score_row(label: str, report: EvalReport) -> str:
    m = report.mean
    return (
        f"| {label} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['ae']:.2f} | "
        f"{m['colorfulness']:.1f} / {m['colorfulness_truth']:.1f} ({m['colorfulness_ratio']:.2f}) |"
    )


def _shown(path: Path) -> str:
    """The path as a reader of RESULTS.md finds it: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=shipped_models(), help="shipped models to report")
    parser.add_argument("--weights", nargs="*", type=Path, default=[], help="further weights files (a run's best)")
    parser.add_argument("--config", default="colormamba-lite", help="train config naming the data and its scene splits")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for timing")
    parser.add_argument("--runs", type=int, default=5, help="timed 640x512 frames (median reported)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    sets = measurement_sets(args.config)

    files = [(name, shipped_weights(name)) for name in args.models]
    if any(path is None for _, path in files):
        parser.error(f"shipped models are {', '.join(shipped_models())}")
    files += [(path.parent.name if path.stem in ("best", "last") else path.stem, path) for path in args.weights]

    header = "| set | PSNR (dB) | SSIM | AE (°) | colourfulness: outputs / truth (ratio) |\n| --- | ---: | ---: | ---: | ---: |"
    sections = []
    gray = GrayNIR()
    baseline = {label: evaluate(gray, dataset, device) for label, dataset in sets.items()}
    for name, path in files:
        model = load_model(path)
        rows, groups = [], []
        for label, dataset in sets.items():
            report = evaluate(model, dataset, device)
            rows += [score_row(f"**{name}**: {label}", report), score_row(f"gray NIR: {label}", baseline[label])]
            if label.startswith("SF-GPT"):
                s = sfgpt_means()
                rows.append(f"| SF-GPT (DWT, published outputs): {label} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['ae']:.2f} | |")
            if report.groups:
                for group, m in report.groups.items():
                    b = baseline[label].groups[group]
                    groups.append(
                        f"| {label.split(' (')[0]}: {group} | {m['psnr']:.2f} / {b['psnr']:.2f} | {m['ssim']:.3f} / {b['ssim']:.3f} | "
                        f"{m['ae']:.2f} / {b['ae']:.2f} | {m['colorfulness_ratio']:.2f} |"
                    )
            print(rows[-2], flush=True)
        contact_sheet(evaluate(model, sets["VCIP val (18)"], device, keep_images=6), SHEETS / f"{name}-val.png")
        sheet_set = PairedDataset([p for p in scenes_pairs(sets) if p.name in SHEET_SCENES])
        scenes_report = evaluate(model, sheet_set, device, keep_images=len(SHEET_SCENES))
        contact_sheet(scenes_report, SHEETS / f"{name}-scenes.jpg", max_width=SCENES_SHEET_WIDTH)

        params = sum(p.numel() for p in model.parameters()) / 1e6
        counted, scan = (f / 1e9 for f in forward_flops(model, *TILE))
        frame_ms, _ = latency_ms(model, FRAME, args.runs)
        (summary,) = run(str(demo_clip()), ["null"], RunConfig(weights=str(path)))
        info = read_metadata(path)["info"]
        hours = (info.get("training_seconds_total") or info.get("training_seconds") or 0) / 3600  # in all, continuations too
        sections.append(
            f"### {name} (`{_shown(path)}`, epoch {info.get('epoch')}, {hours:.1f} h of training in all)\n\n"
            f"{header}\n" + "\n".join(rows) + "\n\n"
            "Scenes per split and category, model / gray NIR:\n\n"
            "| split: category | PSNR (dB) | SSIM | AE (°) | colourfulness ratio |\n| --- | ---: | ---: | ---: | ---: |\n"
            + "\n".join(groups) + "\n\n"
            f"Cost: {params:.2f} M parameters, {counted + scan:.2f} GFLOPs per 256² tile, {frame_ms:.0f} ms per "
            f"640×512 frame ({args.threads} threads), {summary.fps:.1f} fps through `nirstream run` on the demo clip. "
            f"Contact sheets (not committed: the data's terms): `runs/quality/{name}-val.png`, `-scenes.jpg`.\n"
        )
        print(sections[-1], flush=True)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    body = (
        "\n".join(sections) + "\n"
        f"Every figure is a mean over whole images (8-bit output against 8-bit ground truth; SSIM with "
        f"scikit-image's defaults; AE in degrees), as `nirstream eval --model <model> --config {args.config}` "
        "prints for VCIP val and the validation scenes (`--test` for the test split). Colourfulness is Hasler and Süsstrunk's (2003) on the "
        "8-bit outputs; the ratio is the outputs' mean over the ground truth's. SF-GPT's row scores its "
        "published outputs against our ground truth; it selected its checkpoints with these images in view "
        f"(`../shared/anchors/README.md`). Load average {load} at the end.\n"
    )
    update_section("quality_sets", "Quality on every measured set (benchmarks/quality.py)", body)


if __name__ == "__main__":
    main()
