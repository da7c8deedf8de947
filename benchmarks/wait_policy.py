"""Where the pipelined run's last tenth goes on two cores: OpenMP's waiting policy.

``benchmarks/pipeline.py`` finds the pipelined run at about 0.91x of the colorizer alone. The
model's two OpenMP workers fill both cores; when decode or encode takes a core, one worker
stops, and the other reaches the end of the parallel region and spins (libgomp's active wait)
until it comes back, so a millisecond of encoding costs the model about two. Under
``OMP_WAIT_POLICY=PASSIVE`` a waiting worker sleeps at once and its core runs decode or encode
instead: the pipelined run comes closer to the colorizer alone, but every parallel region
then starts with a wake-up, and the colorizer itself slows down.

Each policy runs in fresh processes (libgomp reads it once, at start), alternated round by
round; a process colorizes the clip through the Pipeline (as ``nirstream run`` does) and then
the same frames from memory, in fp32 (``precision: auto`` could choose differently from one
process to the next, and the policies must run the same arithmetic). Writes the ``wait_policy`` section of RESULTS.md.

    python benchmarks/wait_policy.py [--rounds 3] [--frames 40]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from nirstream.core.assets import demo_clip

from pipeline import colorizer_only, pipelined, scaled_clip
from results import load, update_section

POLICIES = {"active (libgomp's default)": {}, "passive (OMP_WAIT_POLICY=PASSIVE)": {"OMP_WAIT_POLICY": "PASSIVE"}}
CLIPS = {"480x320 demo": None, "1280x720": (1280, 720)}


def one(clip: Path, frames: int) -> dict:
    """fps of the pipelined run and of the colorizer alone on ``clip``, in this process."""
    from loguru import logger

    from nirstream.stream.allocator import keep_freed_memory
    from nirstream.stream.colorizer import Colorizer, ColorizerConfig
    from nirstream.core.models import create_model
    from nirstream.stream.sources import VideoSource

    keep_freed_memory()  # as the nirstream command does
    logger.remove()
    colorizer = Colorizer(create_model(), ColorizerConfig(device="cpu", precision="fp32"))
    with VideoSource(clip) as probe:
        colorizer.warmup(probe.info.height, probe.info.width)
    with tempfile.TemporaryDirectory() as folder:
        piped = pipelined(colorizer, clip, Path(folder) / "out.mp4", frames)
    return {"pipelined": piped, "colorizer only": colorizer_only(colorizer, clip, frames)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=40, help="frames of each clip per run")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child process's clip
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.frames)))
        return

    load_before = load()
    runs = {(clip, policy): [] for clip in CLIPS for policy in POLICIES}
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: demo_clip() if size is None else scaled_clip(demo_clip(), Path(folder) / "clip.mp4", *size, args.frames)
                 for name, size in CLIPS.items()}
        for _ in range(args.rounds):
            for (clip, policy), results in runs.items():
                command = [sys.executable, __file__, "--one", str(paths[clip]), "--frames", str(args.frames)]
                done = subprocess.run(command, capture_output=True, text=True, check=True,
                                      env={**os.environ, **POLICIES[policy]})
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(clip, policy, {k: f"{v:.2f}" for k, v in results[-1].items()}, flush=True)

    def median(clip: str, policy: str, way: str) -> float:
        return statistics.median(r[way] for r in runs[clip, policy])

    default = next(iter(POLICIES))
    lines = [
        f"Shipped CPU model, fp32, malloc tuned, torch's default threads; {args.frames} frames per run, "
        f"{args.rounds} rounds alternated, a fresh process per run; load before: {load_before}, after: {load()}. "
        "fps are medians over the rounds; pipelined / colorizer only is the median of each run's ratio; the last "
        "column divides the medians.",
        "",
        "| clip | OpenMP wait | pipelined fps | colorizer only fps | pipelined / colorizer only | "
        "colorizer only against active waiting |",
        "|---|---|---|---|---|---|",
    ]
    for clip in CLIPS:
        for policy in POLICIES:
            ratio = statistics.median(r["pipelined"] / r["colorizer only"] for r in runs[clip, policy])
            against = median(clip, policy, "colorizer only") / median(clip, default, "colorizer only")
            lines.append(f"| {clip} | {policy} | {median(clip, policy, 'pipelined'):.2f} | "
                         f"{median(clip, policy, 'colorizer only'):.2f} | {ratio:.2f}x | {against:.2f}x |")
    update_section("wait_policy", "OpenMP's waiting and the pipeline's last tenth (benchmarks/wait_policy.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
