"""The quality report: every shipped (or given) model on VCIP 2020 val, beside its cost and published figures.

Scores come from :func:`nirstream.core.evaluate.evaluate`, the code behind ``nirstream eval``
(8-bit output against 8-bit ground truth, the VCIP/ColorMamba protocol), on the shipped files
themselves (fp16 storage), so ``nirstream eval --weights assets/weights/<model>.safetensors``
reproduces each row. Cost columns use :mod:`model_cost`'s counters on the same run.
``--weights`` adds trained files that do not ship (a run's ``best.safetensors``). The fps
column is ``nirstream run`` on the demo clip into the null sink, end to end on the CPU.
A contact sheet per model goes to ``benchmarks/figures/<model>-val.png``.

    python benchmarks/quality.py [--data ../shared/data/vcip2020_nir] [--models colormamba-lite ...]
    python benchmarks/quality.py --weights runs/resnet34-lab/best.safetensors runs/pix2pix-lab/best.safetensors
"""

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from nirstream.core.assets import demo_clip, shipped_models, shipped_weights
from nirstream.core.colorspace import AB_SCALE, nir_ab_to_rgb, rgb_to_lab
from nirstream.core.data import PairedFolderDataset
from nirstream.core.evaluate import contact_sheet, evaluate
from nirstream.core.metrics import image_metrics
from nirstream.core.models.cost import forward_flops
from nirstream.core.weights import load_model, read_metadata
from nirstream.stream.config import RunConfig
from nirstream.stream.run import run

from model_cost import FRAME, TILE, latency_ms
from results import update_section

FIGURES = Path(__file__).resolve().parent / "figures"

PUBLISHED = [  # name, PSNR dB, SSIM, AE degrees: as the ColorMamba paper reports them
    ("ColorMamba", 24.56, 0.71, 2.81),
    ("CoColor", 23.54, 0.69, 2.68),
    ("MPFNet", 22.14, 0.63, 3.68),
]


def baselines(data: Path, train_split: str, dataset: PairedFolderDataset) -> dict[str, dict[str, float]]:
    """Scores of two model-free predictors fitted on the training pairs, for scale.

    ``mean colour``: every pixel gets the mean training RGB. ``NIR lookup table``: every pixel
    gets the mean training RGB of the pixels with its 8-bit NIR level, the best any per-pixel
    function of NIR brightness alone can do in the mean.
    """
    sums, counts = np.zeros((256, 3)), np.zeros(256)
    train = PairedFolderDataset(data, train_split)
    for index in range(len(train)):
        item = train[index]
        levels = _levels(item["nir"])
        np.add.at(sums, levels.ravel(), item["rgb"].permute(1, 2, 0).reshape(-1, 3).numpy())
        counts += np.bincount(levels.ravel(), minlength=256)
    mean = sums.sum(axis=0) / counts.sum()
    table = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], mean)
    def lookup(function):
        return lambda item: torch.from_numpy(np.ascontiguousarray(function(_levels(item["nir"])))).permute(2, 0, 1).float()

    def lab_ceiling(item):  # the true a and b, with the NIR as L: what a LAB colorizer could reach at best
        ab = rgb_to_lab(item["rgb"][None])[:, 1:] / AB_SCALE
        return nir_ab_to_rgb(item["nir"][None], ab)[0]

    predictors = {
        "mean colour": lookup(lambda levels: np.broadcast_to(mean, (*levels.shape, 3))),
        "NIR lookup table": lookup(lambda levels: table[levels]),
        "Lab(NIR as L, true a and b)": lab_ceiling,
    }
    scores = {}
    for name, predict in predictors.items():
        rows = []
        for index in range(len(dataset)):
            item = dataset[index]
            pred = predict(item)
            rows.append({k: float(v[0]) for k, v in image_metrics(pred[None], item["rgb"][None]).items()})
        scores[name] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return scores


def _shown(path: Path) -> str:
    """The path as a reader of RESULTS.md finds it: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return str(path)


def _levels(nir: torch.Tensor) -> np.ndarray:
    return (nir[0].numpy() * 255).round().astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/vcip2020_nir"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--models", nargs="+", default=shipped_models())
    parser.add_argument("--weights", nargs="*", type=Path, default=[], help="trained weights files that do not ship")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads for timing")
    parser.add_argument("--runs", type=int, default=5, help="timed 640x512 frames (median reported)")
    parser.add_argument("--sheet-rows", type=int, default=6)
    args = parser.parse_args()
    dataset = PairedFolderDataset(args.data, args.split)
    torch.set_num_threads(args.threads)

    rows = []
    files = []
    for name in args.models:
        path = shipped_weights(name)
        if path is None:
            parser.error(f"no shipped weights for {name}")
        files.append((name, path))
    files += [(read_metadata(path)["model"]["arch"], path) for path in args.weights]
    for name, path in files:
        model = load_model(path)
        report = evaluate(model, dataset, torch.device("cpu"), keep_images=args.sheet_rows)
        sheet = contact_sheet(report, FIGURES / f"{name}-val.png") if args.sheet_rows > 0 else None
        mean = report.mean
        params = sum(p.numel() for p in model.parameters()) / 1e6
        counted, scan = (f / 1e9 for f in forward_flops(model, *TILE))
        frame_ms, runs = latency_ms(model, FRAME, args.runs)
        (summary,) = run(str(demo_clip()), ["null"], RunConfig(weights=str(path)))
        info = read_metadata(path)["info"]
        hours = (info.get("training_seconds") or 0) / 3600
        trained = f"{hours:.1f} h on {info['machine']}" if "machine" in info else "not released"
        rows.append(
            f"| {name} | {mean['psnr']:.2f} | {mean['ssim']:.3f} | {mean['ae']:.2f} | {params:.2f} M | "
            f"{counted + scan:.2f} | {frame_ms:.0f}{' (1 run)' if runs == 1 else ''} | {summary.fps:.1f} | "
            f"epoch {info.get('epoch')}, {trained} | `{_shown(path)}` |"
        )
        print(rows[-1], flush=True)
        if sheet is not None:
            print(f"  contact sheet: {sheet}")

    for name, mean in baselines(args.data, "train", dataset).items():
        rows.append(
            f"| baseline: {name} | {mean['psnr']:.2f} | {mean['ssim']:.3f} | {mean['ae']:.2f} | – | – | – | – | "
            "no model | |"
        )
        print(rows[-1], flush=True)

    header = (
        "| model | PSNR (dB) | SSIM | AE (°) | parameters | GFLOPs / 256² tile | CPU ms / 640×512 frame | "
        "fps, `nirstream run` on the demo (CPU) | training | weights |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
    )
    published = "\n".join(
        f"| {name} (published) | {p:.2f} | {s:.2f} | {a:.2f} | | | | | 28-pair folder, see below | |"
        for name, p, s, a in PUBLISHED
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    body = (
        f"{header}\n" + "\n".join(rows) + f"\n{published}\n\n"
        f"nirstream rows: `nirstream eval --weights <weights> --data {args.data} "
        f"--split {args.split}` on the {len(dataset)} official VCIP 2020 validation pairs (mean over images; "
        "8-bit output against 8-bit ground truth; SSIM with scikit-image defaults; AE in degrees). "
        "GFLOPs count convolutions and matrix products plus the estimated selective-scan work on a "
        f"256×256 network tile; CPU ms is the median fp32 batch-1 forward of a 640×512 frame with "
        f"{args.threads} thread(s); fps is `nirstream run` on the 135-frame 480×320 demo clip into the "
        f"null sink, decode to colorized frame. Load average {load} at the end (a shared machine: compare "
        "rows of one run only). Baselines use no model: the mean training colour; the mean training "
        "colour per NIR level (fitted on train); and the true a and b with the NIR as L, the ceiling of "
        "any colorizer that keeps the NIR as its lightness.\n\n"
        "Published rows are the figures the ColorMamba paper reports on a 28-pair \"VCIP2020 test\" "
        "folder. The shared data's MANIFEST found 15 of those 28 pairs byte-identical to official "
        "validation pairs and 8 to training pairs, so those figures include images the models "
        "trained or were selected on and are not a clean reference for a model scored on val alone.\n"
    )
    update_section("quality", "Quality on VCIP 2020 val (benchmarks/quality.py)", body)


if __name__ == "__main__":
    main()
