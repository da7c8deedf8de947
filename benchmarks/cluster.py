"""A batch of files on one machine against the same batch on a local Ray of 1 and 2 workers.

Each way is the command a user types, run as a subprocess on the same copies of the bundled
demo clip with the shipped CPU model:

- plain: ``nirstream run --source 'clips/*.mp4' --sink out/``, the files one after another;
- ray, 1 worker: ``--cluster ray --workers 1`` (the worker has every core's thread);
- ray, 2 workers: ``--cluster ray --workers 2`` (one thread each).

The figure is video-seconds colorized per wall-second, over the whole command (Ray's start and
each worker's model load included) and, for the cluster runs, over the batch alone (from the
first file handed out to the last one back), which is what a long batch on a running cluster
approaches. Rounds alternate the ways, so the machine's load falls on all of them alike.
Writes the ``cluster`` section of RESULTS.md.

    python benchmarks/cluster.py [--files 4] [--rounds 2]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from nirstream.core.assets import demo_clip

from results import load, update_section

WAYS = {
    "plain": [],
    "ray, 1 worker": ["--cluster", "ray", "--workers", "1"],
    "ray, 2 workers": ["--cluster", "ray", "--workers", "2"],
}


def clip_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.frames / float(stream.average_rate)


def run_way(flags: list[str], clips: Path, out: Path) -> tuple[float, float | None]:
    """(whole-command wall seconds, the cluster's own batch seconds or None) of one run."""
    shutil.rmtree(out, ignore_errors=True)
    command = [str(Path(sys.executable).with_name("nirstream")), "run", "--source", str(clips / "*.mp4"),
               "--sink", f"{out}/", "--log-json", *flags]
    env = {**os.environ, "RAY_ADDRESS": ""}
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    batch = None
    for line in result.stderr.splitlines():
        if line.startswith("{"):
            extra = json.loads(line)["record"]["extra"]
            if "batch" in extra:
                batch = extra["batch"]["wall_seconds"]
    return wall, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=4, help="copies of the demo clip in the batch")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    before = load()

    walls = {way: [] for way in WAYS}
    batches = {way: [] for way in WAYS if WAYS[way]}
    with tempfile.TemporaryDirectory() as folder:
        clips = Path(folder) / "clips"
        clips.mkdir()
        for index in range(args.files):
            shutil.copy(demo_clip(), clips / f"drive{index}.mp4")
        video = args.files * clip_seconds(demo_clip())
        for round_ in range(args.rounds):
            for way, flags in WAYS.items():
                wall, batch = run_way(flags, clips, Path(folder) / "out")
                walls[way].append(wall)
                if batch is not None:
                    batches[way].append(batch)
                print(f"round {round_ + 1} {way}: {wall:.1f} s" + (f" (batch {batch:.1f} s)" if batch else ""), flush=True)

    plain = video / statistics.median(walls["plain"])
    lines = [
        f"{args.files} copies of the demo clip (480x320, {video:.1f} s of video in all), shipped CPU model, "
        f"{args.rounds} rounds alternated; load before: {before}",
        "",
        "| way | video-s per wall-s, whole command | vs plain | video-s per wall-s, batch alone | vs plain |",
        "|---|---|---|---|---|",
    ]
    for way in WAYS:
        whole = video / statistics.median(walls[way])
        row = f"| {way} | {whole:.2f} | {whole / plain:.2f}x |"
        if way in batches and batches[way]:
            alone = video / statistics.median(batches[way])
            row += f" {alone:.2f} | {alone / plain:.2f}x |"
        else:
            row += " - | - |"
        lines.append(row)
    lines += ["", "Every run (wall s): " + "; ".join(f"{way} " + ", ".join(f"{v:.1f}" for v in values)
                                                    for way, values in walls.items())]
    update_section("cluster", "A batch on one machine vs a local Ray cluster (benchmarks/cluster.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
