"""Why the pipeline runs the colorizer in the thread that loaded the model: the same frames,
colorized in the loading thread, in a second thread, and in a second thread that loaded its
own colorizer.

torch's OpenMP (libgomp) keeps a team of worker threads for each thread that runs parallel
work; with more workers than cores, libgomp stops them spinning between parallel regions and
they sleep instead. The third way shows that it is the second team, not the colorizer
object: the loading thread's team still exists while the second thread runs. Malloc is tuned
as the ``nirstream`` command tunes it, so page faults (``benchmarks/allocator.py``) are not
part of the difference. Each round runs every way once, in turn; the table gives medians and
each way's ratio to the loading thread within a round.
Writes the ``model_thread`` section of RESULTS.md.

    python benchmarks/model_thread.py [--rounds 3] [--frames 40]
"""

import argparse
import statistics
import threading
import time

from loguru import logger

from nirstream.core.assets import demo_clip
from nirstream.stream.allocator import keep_freed_memory
from nirstream.stream.colorizer import Colorizer, ColorizerConfig
from nirstream.core.models import create_model
from nirstream.stream.sources import VideoSource

from results import load, update_section


def fps(colorizer: Colorizer, frames: list) -> float:
    start = time.perf_counter()
    for frame in frames:
        colorizer.colorize(frame)
    return len(frames) / (time.perf_counter() - start)


def in_thread(work) -> float:
    result = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    keep_freed_memory()
    logger.remove()
    load_before = load()
    model = create_model()
    with VideoSource(demo_clip()) as source:
        frames = [frame for _, frame in zip(range(args.frames), source)]
    loading = Colorizer(model, ColorizerConfig(device="cpu", precision="fp32"))
    loading.warmup(*frames[0].nir.shape)

    def own_colorizer() -> float:  # made, warmed up and run in this thread
        colorizer = Colorizer(model, ColorizerConfig(device="cpu", precision="fp32"))
        colorizer.warmup(*frames[0].nir.shape)
        return fps(colorizer, frames)

    ways = {
        "the loading thread": lambda: fps(loading, frames),
        "a second thread": lambda: in_thread(lambda: fps(loading, frames)),
        "a second thread with its own colorizer": lambda: in_thread(own_colorizer),
    }
    runs = {way: [] for way in ways}
    for _ in range(args.rounds):
        for way, measure in ways.items():
            runs[way].append(measure())
        print({way: f"{values[-1]:.2f}" for way, values in runs.items()}, flush=True)
    base = runs["the loading thread"]
    lines = [
        f"Shipped CPU model, fp32, the demo clip's first {args.frames} frames (480x320) in memory, "
        f"{args.rounds} rounds alternated, malloc tuned; load before: {load_before}, after: {load()}",
        "",
        "| the colorizer runs in | fps (median) | against the loading thread |",
        "|---|---|---|",
    ] + [
        f"| {way} | {statistics.median(values):.2f} | {statistics.median(v / b for v, b in zip(values, base)):.2f}x |"
        for way, values in runs.items()
    ]
    update_section("model_thread", "The colorizer's thread (benchmarks/model_thread.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
