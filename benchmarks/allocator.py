"""``nirstream run`` with its malloc tuning (:mod:`nirstream.stream.allocator`) against glibc's
defaults, as a user runs it: each run a ``nirstream run`` subprocess, the two alternated
round by round.

Clips: the bundled demo (480x320, decoded and encoded to MP4) and the same frames scaled to
1280x720 (temporary file). The default arm runs with
:data:`~nirstream.stream.allocator.GLIBC_DEFAULTS`, which keeps glibc's own settings
(setting ``MALLOC_TOP_PAD_`` or a threshold instead, even to its default, maps every buffer
above 128 KiB afresh: 2.4-2.9x slower than tuned, as measured here). fps is the run
summary's (frames written over the pipeline's own time, so loading the model is left out);
page faults are the whole child process's minor faults, loading included, per frame written.
Writes the ``allocator`` section of RESULTS.md.

    python benchmarks/allocator.py [--rounds 3] [--frames 40]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from nirstream.core.assets import demo_clip
from nirstream.stream.allocator import GLIBC_DEFAULTS

from pipeline import scaled_clip
from results import load, update_section

ARMS = {"tuned": {}, "glibc defaults": GLIBC_DEFAULTS}


def run_once(clip: Path, folder: Path, frames: int, env: dict[str, str]) -> tuple[float, float]:
    """(fps, minor page faults per frame) of one ``nirstream run`` of ``clip`` into an MP4."""
    summary = folder / "summary.json"
    command = [sys.executable, "-m", "nirstream.stream.cli", "run", "--source", str(clip), "--sink", str(folder / "out.mp4"),
               "-y", "--max-frames", str(frames), "--summary-json", str(summary)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, **env})
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before
    result = json.loads(summary.read_text())[0]
    return result["fps"], faults / result["written"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    load_before = load()
    rows = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        clips = {"480x320 demo": demo_clip(), "1280x720": scaled_clip(demo_clip(), folder / "720p.mp4", 1280, 720, args.frames)}
        for clip_name, clip in clips.items():
            fps = {arm: [] for arm in ARMS}
            faults = {arm: [] for arm in ARMS}
            for _ in range(args.rounds):
                for arm, env in ARMS.items():
                    value, fault_rate = run_once(clip, folder, args.frames, env)
                    fps[arm].append(value)
                    faults[arm].append(fault_rate)
            ratio = statistics.median(t / d for t, d in zip(fps["tuned"], fps["glibc defaults"]))
            rows.append((clip_name, fps, faults, ratio))
            print(clip_name, {arm: [f"{v:.2f}" for v in values] for arm, values in fps.items()}, f"{ratio:.2f}x", flush=True)
    lines = [
        f"`nirstream run` subprocesses into an MP4, {args.frames} frames per run, {args.rounds} rounds alternated; "
        f"load before: {load_before}, after: {load()}",
        "",
        "| clip | tuned fps | glibc defaults fps | tuned / defaults (median of rounds) | page faults per frame (whole process), tuned | defaults |",
        "|---|---|---|---|---|---|",
    ]
    for clip_name, fps, faults, ratio in rows:
        lines.append(
            f"| {clip_name} | {statistics.median(fps['tuned']):.2f} | {statistics.median(fps['glibc defaults']):.2f} | "
            f"{ratio:.2f}x | {statistics.median(faults['tuned']):,.0f} | {statistics.median(faults['glibc defaults']):,.0f} |"
        )
    lines += ["", "Every run (fps): " + "; ".join(
        f"{clip_name} {arm} " + ", ".join(f"{v:.2f}" for v in values) for clip_name, fps, _, _ in rows for arm, values in fps.items()
    )]
    update_section("allocator", "malloc tuned against glibc's defaults through nirstream run (benchmarks/allocator.py)",
                   "\n".join(lines))


if __name__ == "__main__":
    main()
