"""Turn a training run's best weights into a shipped model file in assets/weights/.

Tensors are stored as fp16 (half the size; they load back into fp32 models), and the metadata
keeps the training provenance the trainer wrote (config, epoch, val metrics) plus what a model
card needs: the command, the machine, the wall time (this run's, and in all when the run
continued released weights through ``run.init``), the data's terms, and the scores of the
released (fp16) file itself on every validation set of its training config under
``eval_sets`` (VCIP val also under ``eval``), and on its fixed test split (``data.test``) under
``test_sets``, scored here once per release (or rescore): the figures the README and the model card
quote, which ``nirstream eval --model NAME --config CONFIG [--test]`` reproduces and a test checks.

    python tools/release_weights.py runs/colormamba-lite --command "nirstream train ..." \
        --machine "2-core CPU" [--name colormamba-lite]

When the code that runs a released file changes its output (its padding, say), ``--rescore``
scores the file again on the same sets in place: its tensors and provenance stay, its scores
and fingerprint are replaced, and ``rescored`` lists when and why, every time.

    python tools/release_weights.py --rescore assets/weights/colormamba-lite.safetensors --why "..."
"""

import argparse
import csv
import datetime
import sys
from pathlib import Path

import torch

from nirstream.core.config import apply_overrides, bind
from nirstream.core.evaluate import evaluate
from nirstream.core.train import TrainConfig
from nirstream.core.train.datasets import test_sets, validation_sets
from nirstream.core.weights import load_model, read_metadata, save_weights

FINGERPRINT_SIZE, FINGERPRINT_FRAME = (320, 256), 12

TERMS = (
    "Trained on VCIP 2020 NIR colorization challenge data and EPFL RGB-NIR Scene dataset images "
    "(Brown & Suesstrunk, CVPR 2011): research and educational use only"
)


def training_seconds(run_dir: Path) -> float | None:
    """Wall time of the run: the sum of the ``seconds`` column of its metrics.csv."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    with path.open() as handle:
        return sum(float(row["seconds"] or 0) for row in csv.DictReader(handle))


def fingerprint(model: torch.nn.Module) -> dict:
    """The mean and spread of each output channel on a synthetic frame: a check of the shipped
    file that needs no data set (tests/core/test_assets.py recomputes it)."""
    from nirstream.stream.sources import TestSource

    nir = torch.from_numpy(TestSource(*FINGERPRINT_SIZE).render(FINGERPRINT_FRAME)).float().div(255)[None, None]
    with torch.inference_mode():
        rgb = model.eval()(nir)[0].flatten(1)
    return {
        "testsrc": [*FINGERPRINT_SIZE, FINGERPRINT_FRAME],
        "mean": [round(float(v), 5) for v in rgb.mean(dim=1)],
        "std": [round(float(v), 5) for v in rgb.std(dim=1)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, nargs="?", help="a training run folder with best.safetensors")
    parser.add_argument("--name", help="model name for the file (default: the run's model config name)")
    parser.add_argument("--command", help="the exact training command (required for a release)")
    parser.add_argument("--machine", help="where it trained, e.g. '2-core CPU, 1 thread' (required for a release)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "weights")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override the run's train config for scoring, e.g. data.root=PATH (repeatable)")
    parser.add_argument("--rescore", type=Path, metavar="FILE", help="score a released file again, in place")
    parser.add_argument("--why", help="with --rescore: what changed its output")
    args = parser.parse_args()
    if args.rescore:
        if args.run_dir or not args.why or args.name or args.command or args.machine:
            parser.error("--rescore takes a released file and --why, and no run folder, --name, --command or --machine")
        source, target = args.rescore, args.rescore
        info = read_metadata(source)["info"]
        info["rescored"] = [*info.get("rescored", []), {"date": datetime.date.today().isoformat(), "why": args.why}]
    else:
        if not (args.run_dir and args.command and args.machine) or args.why:
            parser.error("a release needs a run folder, --command and --machine (--why goes with --rescore)")
        source = args.run_dir / "best.safetensors"
        info = read_metadata(source)["info"]
    config = bind(TrainConfig, apply_overrides(info["config"], args.overrides))
    if not args.rescore:
        name = args.name or (config.model if isinstance(config.model, str) else None)
        if not name or "/" in name or name.endswith((".yaml", ".yml")):
            parser.error("cannot tell the model name from the run: pass --name")
        target = args.out / f"{name}.safetensors"
        seconds = training_seconds(args.run_dir)
        before = (info.get("continues") or {}).get("training_seconds_total") or 0.0  # recorded when the run started
        info.update({
            "name": name,
            "command": args.command,
            "machine": args.machine,
            "training_seconds": seconds,
            "training_seconds_total": (seconds or 0.0) + before,
            "released": datetime.date.today().isoformat(),
            "terms": TERMS,
        })
    model = load_model(source)
    with torch.no_grad():  # score what ships: the fp16-rounded tensors, as users load them back
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())

    def scores(label: str, dataset) -> dict:
        report = evaluate(model, dataset, torch.device("cpu"))
        print(f"{label}: {report.mean}")
        return {"images": len(report.images), **report.mean, "groups": report.groups}

    info["eval_sets"] = {name or "val": scores(name or "val", data) for name, data, _ in validation_sets(config.data)}
    info["test_sets"] = {name: scores(f"test {name}", data) for name, data in test_sets(config.data)}  # scored once per release or rescore, here
    info["eval"] = {"data": Path(config.data.root).name, "split": config.data.val_split, **info["eval_sets"]["val"]}
    info["fingerprint"] = fingerprint(model)
    path = save_weights(model, target, info=info, dtype=torch.float16)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, epoch {info.get('epoch')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
