"""Turn a training run's best weights into a shipped model file in assets/weights/.

Tensors are stored as fp16 (half the size; they load back into fp32 models), and the metadata
keeps the training provenance the trainer wrote (config, epoch, val metrics) plus what a model
card needs: the command, the machine, the wall time, the data's terms, and the scores of the
released (fp16) file itself on the validation split under ``eval``: the figures the README
quotes, which ``nirstream eval`` reproduces and a test checks.

    python tools/release_weights.py runs/colormamba-lite --command "nirstream train ..." \
        --machine "2-core CPU" [--name colormamba-lite]
"""

import argparse
import csv
import datetime
import sys
from pathlib import Path

import torch

from nirstream.core.data import PairedFolderDataset
from nirstream.core.evaluate import evaluate
from nirstream.core.weights import load_model, read_metadata, save_weights

TERMS = (
    "Trained on VCIP 2020 NIR colorization challenge data (EPFL RGB-NIR Scene dataset, Brown & "
    "Suesstrunk, CVPR 2011): research and educational use only"
)


def training_seconds(run_dir: Path) -> float | None:
    """Wall time of the run: the sum of the ``seconds`` column of its metrics.csv."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    with path.open() as handle:
        return sum(float(row["seconds"] or 0) for row in csv.DictReader(handle))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a training run folder with best.safetensors")
    parser.add_argument("--name", help="model name for the file (default: the run's model config name)")
    parser.add_argument("--command", required=True, help="the exact training command")
    parser.add_argument("--machine", required=True, help="where it trained, e.g. '2-core CPU, 1 thread'")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "weights")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/vcip2020_nir",
                        help="paired folder to score the released file on")
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    source = args.run_dir / "best.safetensors"
    meta = read_metadata(source)
    info = meta["info"]
    name = args.name or info.get("config", {}).get("model")
    if not isinstance(name, str) or not name:
        parser.error("cannot tell the model name from the run: pass --name")
    info.update({
        "name": name,
        "command": args.command,
        "machine": args.machine,
        "training_seconds": training_seconds(args.run_dir),
        "released": datetime.date.today().isoformat(),
        "terms": TERMS,
    })
    model = load_model(source)
    with torch.no_grad():  # score what ships: the fp16-rounded tensors, as users load them back
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    report = evaluate(model, PairedFolderDataset(args.data, args.split), torch.device("cpu"))
    info["eval"] = {"data": args.data.name, "split": args.split, "images": len(report.images), **report.mean}
    path = save_weights(model, args.out / f"{name}.safetensors", info=info, dtype=torch.float16)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, epoch {info.get('epoch')}, {args.split}: {report.mean}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
