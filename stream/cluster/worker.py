"""The worker side: a Ray actor that loads the model once and colorizes whole files with the
code a single-machine run uses, and the tally it reports its progress to."""

import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loguru import logger

from nirstream.stream.config import RunConfig
from nirstream.stream.sinks.spec import SinkSpec
from nirstream.stream.stats import Summary

from .plan import shared_storage_problems

REPORT_EVERY_S = 0.5
"""How often a worker tells the driver how far its file has come."""

class ColorizeWorker:
    """A Ray actor: the model, loaded once by :meth:`load`, and the colorizer it runs every file
    with. Wrapped with ``ray.remote`` by the pool (so that importing this module needs no Ray);
    it runs two calls at once, :meth:`colorize` and :meth:`stop` beside it.

    Ray runs those calls on a pool of threads, so the model's work (loading, warm-up, every
    file) goes to one thread of the worker's own: torch keeps a team of OpenMP threads per
    thread that calls it, and more teams than cores make every team slow
    (:mod:`nirstream.stream.pipeline` says how).

    Construction only stores the settings: what can fail on a worker's node (storage it cannot
    see, weights that are not there) fails in a method, whose error reaches the driver whole.
    """

    def __init__(self, config: RunConfig, threads: int, log_level: str) -> None:
        self.config, self.threads = config, threads
        logger.remove()
        logger.add(sys.stderr, level=log_level, format="{level: <7} {message}", colorize=False)
        self.colorizer = None
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nirstream-model")
        self.stopping = threading.Event()

    def check_storage(self, markers: dict[str, str], inputs: list[str]) -> tuple[list[str], str]:
        """What this node cannot see, and where this node is (for the error)."""
        import ray

        return shared_storage_problems(markers, inputs), f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"

    def load(self) -> int:
        """Load the model (once: a first file that arrives meanwhile waits for it); the worker's
        process id (what a test kills)."""
        self.model_thread.submit(self._load).result()
        return os.getpid()

    def _load(self) -> None:
        import torch

        from nirstream.stream.colorizer import Colorizer
        from nirstream.stream.run import model_for

        if self.colorizer is None:
            torch.set_num_threads(self.threads)
            self.colorizer = Colorizer(model_for(self.config), self.config.engine)

    def colorize(self, job: int, attempt: int, spec: str, targets: list[SinkSpec], tally: Any) -> Summary:
        """Colorize one file into its sinks, reporting progress to ``tally`` as it goes."""
        from nirstream.stream.run import bag_sink_options, colorize_input, source_options
        from nirstream.stream.sinks import open_sink
        from nirstream.stream.sources import open_source
        from nirstream.stream.sources.resize import ResizedSource, parse_size

        self.load()
        source = open_source(spec, **source_options(spec, self.config))
        if self.config.resize:
            source = ResizedSource(source, parse_size(self.config.resize))
        sinks = [open_sink(target, self.config.sink, **bag_sink_options(source)) for target in targets]
        report = _Reporter(tally, job, attempt, sinks)
        try:
            summary = self.model_thread.submit(colorize_input, source, self.colorizer, sinks, self.config,
                                               on_frame=report, stop=self.stopping).result()
        finally:
            report.send()
            self.stopping.clear()  # here, not at the start: a stop that came while the model loaded holds for this file
        return summary

    def stop(self) -> None:
        """Stop the file under way, as Ctrl-C stops a single-machine run: its output stays partial."""
        self.stopping.set()


class _Reporter:
    """A worker's ``on_frame``: counts frames and tells the driver's tally every so often (the
    worker stops a pipeline through the stop event it hands it)."""

    def __init__(self, tally: Any, job: int, attempt: int, sinks: list) -> None:
        self.tally, self.job, self.attempt, self.sinks = tally, job, attempt, sinks
        self.frames, self.sent_at = 0, 0.0

    def __call__(self, frame: Any, stats: Any) -> None:
        self.frames += 1
        if self.frames == 1 or time.monotonic() - self.sent_at >= REPORT_EVERY_S:
            self.send()

    def send(self) -> None:
        partials = [str(sink.written_path) for sink in self.sinks
                    if sink.written_path is not None and sink.written_path != sink.path]
        self.tally.add.remote(self.job, self.attempt, self.frames, partials)
        self.sent_at = time.monotonic()


class Tally:
    """A small Ray actor the workers report to: per file, the latest attempt's frames and the
    partial files it writes (reports of an earlier attempt that arrive late are ignored)."""

    def __init__(self) -> None:
        self.state: dict[int, tuple[int, int, list[str]]] = {}

    def add(self, job: int, attempt: int, frames: int, partials: list[str]) -> None:
        if job not in self.state or attempt >= self.state[job][0]:
            self.state[job] = (attempt, frames, partials)

    def read(self) -> dict[int, tuple[int, int, list[str]]]:
        return self.state
