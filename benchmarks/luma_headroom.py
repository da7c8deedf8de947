"""How much a model's output gains if its luma moves towards the NIR's: on the pairs it trained
on, and on the validation sets it did not.

Where materials reflect NIR as they reflect light, the NIR's brightness is the scene's; the
luma gate (``luma_gate: true``) lets a model learn, per pixel, how far to move its luma there.
It can only learn what the training loss rewards. This measures the reward: each image's output
moved by ``a * (nir - luma(output))`` on all three channels (its chroma kept) for ``a`` in
0, 0.25, ..., 1, and the PSNR at each ``a`` and at each image's best. On the training pairs
(every sixth VCIP training pair, the scenes' training split) that best is what the loss could
find; on the validation sets it is what unseen scenes would gain. The test split is not read.
Prints a table (for the ``prior_mix_gate`` section of RESULTS.md).

    python benchmarks/luma_headroom.py [--weights colormamba-lite]
"""

import argparse

import numpy as np
import torch
from torch.utils.data import Subset

from nirstream.core.colorspace import luma
from nirstream.core.data import PairedFolderDataset
from nirstream.core.metrics import psnr
from nirstream.core.models import create_model
from nirstream.core.train import load_train_config
from nirstream.core.train.datasets import validation_sets

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


def sets(config_name: str) -> dict[str, torch.utils.data.Dataset]:
    data = load_train_config(config_name).data
    main = PairedFolderDataset(data.root, data.train_split, exclude=data.exclude)
    scenes = next(more for more in data.more_train if more.name == "scenes")
    chosen = {
        "every 6th VCIP training pair": Subset(main, range(0, len(main), 6)),
        "the scenes' training split": PairedFolderDataset(scenes.root, scenes.split, exclude=scenes.exclude),
    }
    chosen.update({name or "VCIP val": dataset for name, dataset, _ in validation_sets(data)})
    return chosen


@torch.inference_mode()
def headroom(model: torch.nn.Module, dataset: torch.utils.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """PSNR per image and share (images x shares), and the NIR shown as gray's per image."""
    scores, gray = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        nir, rgb = item["nir"][None], item["rgb"][None]
        out = model(nir)
        towards_nir = nir - luma(out)
        scores.append([float(psnr((out + a * towards_nir).clamp(0, 1), rgb)[0]) for a in SHARES])
        gray.append(float(psnr(nir.expand(-1, 3, -1, -1), rgb)[0]))
    return np.array(scores), np.array(gray)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="colormamba-lite", help="a weights file or shipped model")
    parser.add_argument("--config", default="colormamba-lite", help="the training config whose sets to read")
    args = parser.parse_args()
    model = create_model(args.weights).eval()
    shares = " | ".join(f"a = {a:g}" for a in SHARES)
    print(f"| set | pairs | gray NIR | {shares} | each image's best a | gain of the best |")
    print("|---|---:|---:|" + "---:|" * len(SHARES) + "---:|---:|")
    for name, dataset in sets(args.config).items():
        scores, gray = headroom(model, dataset)
        best = scores.max(axis=1).mean()
        cells = " | ".join(f"{s:.2f}" for s in scores.mean(axis=0))
        print(f"| {name} | {len(gray)} | {gray.mean():.2f} | {cells} | {best:.2f} | +{best - scores[:, 0].mean():.2f} dB |",
              flush=True)


if __name__ == "__main__":
    main()
