"""Where the semantic prior's frame time could come back from: the CPU default with one or more
of its blocks removed, timed against the model without the prior, and scored as it is (the
shipped file's weights for the blocks that remain, nothing retrained) on the training config's
validation sets. Written for (and run with) the first file with the prior, released on
2026-12-05 (``git show e5655ef:assets/weights/colormamba-lite.safetensors``), whose blocks the
candidates remove; ``--weights`` names it or another.

The prior adds about a quarter to a 640x512 frame (``benchmarks/prior_cost.py``); the issue's
target is at most the previous default's time. A block the prior makes redundant is a candidate
to remove, and a candidate whose zero-shot score stays near the file's needs little training to
recover. The test split is not read: this chooses what to train next.

Each way is timed in this process (the model's forward pass on a 640x512 frame, fp32, torch's
default threads, a warm-up then ``--frames`` timed passes), the ways alternated round by round;
the ratio is the median over rounds of a way's time over the same round's time of the model
without the prior. Writes the ``slimmer_prior`` section of RESULTS.md.

    python benchmarks/slimmer_prior.py [--weights W.safetensors] [--rounds 3] [--frames 6]
"""

import argparse
import statistics
import time

import torch

from nirstream.core.evaluate import evaluate
from nirstream.core.models import build_model, create_model
from nirstream.core.train import load_train_config
from nirstream.core.train.datasets import validation_sets

from results import cpu_features, load, update_section

CANDIDATES = {
    "without the prior (the previous default's architecture)": {"encoder": None},
    "with the prior (the shipped default)": {},
    "prior; no VSS block at 1/32 (depths 0,0,1,0)": {"depths": [0, 0, 1, 0]},
    "prior; no decoder VSS block at 1/16 (decoder_depths 0,0,0)": {"decoder_depths": [0, 0, 0]},
    "prior; neither of those two VSS blocks": {"depths": [0, 0, 1, 0], "decoder_depths": [0, 0, 0]},
    "prior; no conv blocks at 1/4 (conv_depths 0,1,0,0)": {"conv_depths": [0, 1, 0, 0]},
    "prior; G_B 16 wide (nfg 16, G_B retrained)": {"nfg": 16},
}
"""way: changes to the shipped model's config"""


def frame_ms(model: torch.nn.Module, frames: int) -> float:
    nir = torch.rand(1, 1, 512, 640)
    with torch.inference_mode():
        model(nir)
        times = []
        for _ in range(frames):
            start = time.perf_counter()
            model(nir)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="colormamba-lite", help="a weights file or shipped model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=6, help="timed passes per way and round")
    args = parser.parse_args()

    shipped = create_model(args.weights).eval()
    models, kept = {}, {}
    for way, change in CANDIDATES.items():
        model = build_model({**shipped.config, **change}).eval()
        state = shipped.state_dict()
        shapes = model.state_dict()
        usable = {k: v for k, v in state.items() if k in shapes and shapes[k].shape == v.shape}
        missing, _ = model.load_state_dict(usable, strict=False)
        models[way], kept[way] = model, not missing  # missing: parts that would start untrained

    load_before = load()
    ms = {way: [] for way in CANDIDATES}
    for _ in range(args.rounds):
        for way, model in models.items():
            ms[way].append(frame_ms(model, args.frames))
        print({way: f"{values[-1]:.1f}" for way, values in ms.items()}, flush=True)
    load_after = load()
    base = next(iter(CANDIDATES))

    sets = validation_sets(load_train_config("colormamba-lite").data)
    scores = {}
    for way, model in models.items():
        if kept[way] and CANDIDATES[way].get("encoder", "prior") is not None:
            scores[way] = [evaluate(model, dataset, torch.device("cpu")).mean["psnr"] for _, dataset, _ in sets]
    set_names = [name or "VCIP val" for name, _, _ in sets]

    lines = [
        f"The model's forward pass on a 640x512 frame in fp32, {args.frames} timed passes per way and round after a "
        f"warm-up, {args.rounds} rounds alternated in one process; CPU flags: {cpu_features()}; load before: "
        f"{load_before}, after: {load_after}. Ratio: the median of each round's time over the same round's time "
        "without the prior. Scores: PSNR of the shipped file's weights for the blocks that remain, nothing "
        "retrained (the way without the prior, and a way that needs new weights, are not scored), on the "
        "training config's validation sets; the test split is not read.",
        "",
        f"| way | ms per frame (median of rounds) | frame time ratio | zero-shot PSNR: {' / '.join(set_names)} |",
        "|---|---|---|---|",
    ]
    for way in CANDIDATES:
        ratio = statistics.median(w / b for w, b in zip(ms[way], ms[base]))
        score = " / ".join(f"{s:.2f}" for s in scores[way]) if way in scores else "–"
        lines.append(f"| {way} | {statistics.median(ms[way]):.1f} | {ratio:.2f}x | {score} |")
    lines += ["", "Every run (ms): " + "; ".join(f"{way} " + ", ".join(f"{v:.1f}" for v in values)
                                                for way, values in ms.items())]
    update_section("slimmer_prior", "Where the prior's frame time could come back from (benchmarks/slimmer_prior.py)",
                   "\n".join(lines))


if __name__ == "__main__":
    main()
