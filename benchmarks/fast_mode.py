"""Fast mode against full-resolution inference: speed-up and PSNR cost on VCIP validation images.

Each validation NIR image is colorized at full resolution and in fast mode (model at
``--scale``, guided upsampling), alternating per image so machine noise hits both alike, and
both are scored against the ground truth with the VCIP metrics. The figures are the
speed-up (ratio of median times) and the PSNR difference.

    python benchmarks/fast_mode.py [--weights W.safetensors] [--data ../shared/data/vcip2020_nir] [--scale 0.5]
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from nirstream.core.data import PairedFolderDataset
from nirstream.core.metrics import image_metrics
from nirstream.core.assets import shipped_weights
from nirstream.core.weights import load_model, read_metadata
from nirstream.stream.colorizer import Colorizer, ColorizerConfig
from nirstream.stream.frame import Frame

from results import update_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="default: the shipped colormamba-lite")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/vcip2020_nir"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.weights = args.weights or shipped_weights("colormamba-lite")
    if args.weights is None:
        parser.error("no shipped colormamba-lite weights in this installation: pass --weights")
    model = load_model(args.weights)
    modes = {
        "full": Colorizer(model, ColorizerConfig(device="cpu", warmup=False)),
        "fast": Colorizer(model, ColorizerConfig(device="cpu", warmup=False, fast_scale=args.scale)),
    }
    dataset = PairedFolderDataset(args.data, args.split)
    times = {name: [] for name in modes}
    psnr = {name: [] for name in modes}
    for index in range(len(dataset)):
        item = dataset[index]
        nir8 = (item["nir"][0].numpy() * 255).round().astype(np.uint8)
        for name, colorizer in modes.items():
            colorizer.colorize(Frame(0, 0.0, 0.0, nir8))  # warm this size
            samples = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                rgb = colorizer.colorize(Frame(0, 0.0, 0.0, nir8)).rgb
                samples.append(time.perf_counter() - start)
            times[name].append(statistics.median(samples))
            pred = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
            psnr[name].append(float(image_metrics(pred, item["rgb"][None])["psnr"][0]))
    full_ms, fast_ms = (statistics.median(times[n]) * 1e3 for n in ("full", "fast"))
    full_db, fast_db = (float(np.mean(psnr[n])) for n in ("full", "fast"))
    info = read_metadata(args.weights)["info"]
    rows = (
        f"| full resolution | {full_ms:.1f} | {full_db:.2f} |\n"
        f"| fast mode (scale {args.scale}) | {fast_ms:.1f} | {fast_db:.2f} |"
    )
    print(rows)
    body = (
        f"Weights `{args.weights.name}` ({read_metadata(args.weights)['model'].get('arch')}, "
        f"epoch {info.get('epoch', '?')}, val PSNR {info.get('metrics', {}).get('val_psnr', float('nan')):.2f} dB "
        f"when trained), {len(dataset)} {args.split} images of "
        f"{dataset[0]['nir'].shape[-1]}x{dataset[0]['nir'].shape[-2]}, CPU, median of {args.repeats} runs per image.\n\n"
        "| mode | ms per image | PSNR dB |\n|---|---|---|\n" + rows +
        f"\n\nSpeed-up {full_ms / fast_ms:.2f}x, PSNR cost {full_db - fast_db:+.2f} dB. The PSNR figures are only as good "
        "as the weights (their own validation PSNR is in their metadata); at small frames the model's fixed "
        "costs dominate, so the speed-up grows with frame size."
    )
    update_section("fast_mode", "Fast mode vs full resolution (VCIP validation)", body)


if __name__ == "__main__":
    main()
