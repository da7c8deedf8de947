"""``nirstream run``: one or many inputs through the colorizer into the chosen sinks.

This is where the pipeline is assembled in one visible place: the model
(:func:`~nirstream.core.models.create_model`), the colorizer, and for each input its source,
its sinks and a :class:`~nirstream.stream.pipeline.Pipeline`, reported by
:class:`~nirstream.stream.progress.Progress`.
"""

import json
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from loguru import logger

from nirstream.core.errors import ConfigError, NirstreamError, one_line
from nirstream.core.models import create_model
from nirstream.stream.colorizer import Colorizer
from nirstream.stream.colorizer.colorizer import busy_cpu_advice
from nirstream.stream.config import RunConfig
from nirstream.stream.pipeline import Pipeline, RunStats
from nirstream.stream.progress import Progress
from nirstream.stream.errors import SinkError
from nirstream.stream.frame import Frame
from nirstream.stream.sinks import open_sink, parse_sink
from nirstream.stream.sinks.base import Sink
from nirstream.stream.sinks.spec import SinkConfig, SinkSpec, check_writable, refuse_to_replace
from nirstream.stream.sinks.window import check_display
from nirstream.stream.bags import is_bag_path
from nirstream.stream.sources.video import is_network_url
from nirstream.stream.sources import BagSource, Source, expand_inputs, is_camera_spec, open_source, relative_names
from nirstream.stream.sources.realtime import RealtimeSource
from nirstream.stream.sources.resize import ResizedSource, parse_size
from nirstream.stream.stats import Summary


def run(
    source_spec: str, sink_specs: list[str], config: RunConfig, *, summary_json: Path | None = None, bars: bool = False
) -> list[Summary]:
    """Colorize every input ``source_spec`` names into ``sink_specs`` (none: the null sink, with a
    warning); return one summary per input. ``bars``: progress bars (a terminal), else log lines."""
    _, sources, per_input = open_inputs(source_spec, sink_specs, config)
    try:
        if advice := busy_cpu_advice(config.engine):
            logger.warning(advice)
        colorizer = Colorizer(model_for(config), config.engine)
    except BaseException:
        for source in sources:
            source.close()
        raise
    warn_without_sinks(sink_specs)
    progress = Progress(sources, max_frames=config.max_frames, bars=bars)
    summaries, outputs = [], []
    try:
        for source, targets in zip(sources, per_input):
            sinks = [open_sink(spec, config.sink, **bag_sink_options(source)) for spec in targets]
            outputs += [sink for sink in sinks if sink.written_path is not None]
            progress.start(source)
            try:
                summary = colorize_input(source, colorizer, sinks, config, on_frame=progress)
            finally:
                progress.end()
            summaries.append(summary)
            # through the log: with --log-json the summary is one JSON object (its fields under "extra")
            logger.bind(summary=asdict(summary)).info(summary.table())
            if summary.interrupted:
                break
    finally:
        progress.close()
        for source in sources:
            source.close()
    if summary_json is not None:
        write_summaries(summaries, summary_json)
    for sink in outputs:
        logger.info(f"output: {sink.written_path.resolve()} ({sink.frames_written} frames)")
    for spec in {spec for targets in per_input for spec in targets if spec.kind == "folder"}:
        logger.info(f"output: {spec.output}")
    return summaries


def open_inputs(
    source_spec: str, sink_specs: list[str], config: RunConfig
) -> tuple[list[str], list[Source], list[list[SinkSpec]]]:
    """Every input ``source_spec`` names: its spec, its opened source, and the sinks it writes.

    Inputs and outputs are checked first: a missing file or camera, a bad ``--sink``, or an
    output that would replace an existing file fails at once, before seconds of model loading.
    """
    inputs = expand_inputs(source_spec)
    specs = [parse_sink(text) for text in sink_specs or ["null"]]
    size = parse_size(config.resize) if config.resize else None
    sources: list[Source] = []
    try:
        for spec in inputs:
            sources.append(open_source(spec, **source_options(spec, config)))
        if config.topic is not None and not any(isinstance(source, BagSource) for source in sources):
            raise ConfigError(f"--topic chooses a bag's camera topic, and {source_spec} is not a bag")
        names = relative_names(source_spec, inputs)
        many = len(sources) > 1
        per_input = [
            [(spec.for_bag(name if many else None) if isinstance(source, BagSource)
              else spec.for_input(name) if many else spec) for spec in specs]
            for source, name in zip(sources, names)
        ]
        if size is not None:
            sources = [ResizedSource(source, size) for source in sources]
        if config.realtime:
            sources = [RealtimeSource(source) for source in sources]
        check_outputs([spec for targets in per_input for spec in targets], config.sink)
    except BaseException:
        for source in sources:
            source.close()
        raise
    return inputs, sources, per_input


def check_port(spec: SinkSpec) -> None:
    """A one-line SinkError when a live view's port is taken (or its address not this machine's)."""
    import socket

    if not spec.port:  # 0: any free port
        return
    with socket.socket() as probe:
        try:
            probe.bind((spec.host, spec.port))
        except OSError as error:
            raise SinkError(f"cannot serve the {spec.kind} sink on {spec.host}:{spec.port}: {one_line(error)} "
                            f"(choose another port: --sink {spec.kind}:PORT)") from error


def model_for(config: RunConfig):
    """The model a run config names: ``weights``, else ``model`` (untrained allowed, for timing),
    else the shipped default for ``engine.device`` (:func:`~nirstream.core.models.create_model`)."""
    return create_model(config.weights or config.model, device=config.engine.device, untrained=True)


def source_options(spec: str, config: RunConfig) -> dict:
    """The options of the source ``spec`` names: a camera's format, a bag's topic."""
    if is_camera_spec(spec):
        return asdict(config.camera)
    if config.topic is not None and not is_network_url(spec) and is_bag_path(Path(spec).expanduser()):
        return {"topic": config.topic}
    return {}


def bag_sink_options(source: Source) -> dict:
    """What a bag sink takes from a bag input: the camera topic it names its own after, and the
    input's other messages to copy."""
    while not isinstance(source, BagSource) and hasattr(source, "source"):  # through --resize, --realtime
        source = source.source
    if not isinstance(source, BagSource):
        return {}
    return {"input_topic": source.topic, "copy_from": source}


def warn_without_sinks(sink_specs: list[str]) -> None:
    """Said once the model has loaded (a bad model is the one line a failing run prints)."""
    if not sink_specs:
        logger.warning("no --sink: the colorized frames are not kept (add --sink out.mp4, a folder/, or preview)")


def colorize_input(
    source: Source, colorizer: Colorizer, sinks: list[Sink], config: RunConfig,
    *, on_frame: Callable[[Frame, RunStats], None] | None = None, stop: threading.Event | None = None,
) -> Summary:
    """One input through ``colorizer`` into its opened ``sinks``: the same on one machine and on a
    cluster's worker (:mod:`nirstream.stream.cluster`), so both write the same frames. Call it
    from the thread that made ``colorizer``: the model runs in the calling thread.

    A failure's one error line also says what was kept, and where.
    """
    if config.engine.warmup:
        colorizer.warmup(source.info.height, source.info.width)
    colorizer.start_input(source.info.sequence)
    pipeline = Pipeline(
        source, colorizer, sinks,
        capacity=config.queue.capacity, policy=config.queue.policy, max_frames=config.max_frames,
        on_frame=on_frame, stop=stop,
    )
    try:
        return pipeline.run()
    except NirstreamError as error:
        kept = [f"{_frames(sink.frames_written)} kept in {sink.written_path}" for sink in sinks
                if sink.written_path is not None and sink.written_path.exists()]
        if kept and kept[0] not in str(error):
            error.args = (f"{error} ({'; '.join(kept)})",)
        raise


def check_outputs(specs: list[SinkSpec], config: SinkConfig) -> None:
    """Fail before any model loads on an output that would replace a file, that two inputs would
    both write, or that cannot be written."""
    videos = [spec.path.resolve() for spec in specs if spec.kind in ("video", "mcap", "rosbag2")]
    shared = sorted({path for path in videos if videos.count(path) > 1})
    if shared:
        raise SinkError(f"two inputs would both write {shared[0]} (their names differ only in folder or ending)")
    for spec in specs:
        if spec.kind == "window":
            check_display()
        elif spec.kind in ("preview", "foxglove"):
            check_port(spec)
        if spec.kind in ("video", "mcap", "rosbag2"):
            refuse_to_replace(spec.path, config.overwrite)
            check_writable(spec.path)
        elif spec.kind == "folder":
            check_writable(spec.path / "image.png")


def _frames(count: int) -> str:
    return f"{count} frame" + ("" if count == 1 else "s")


def write_summaries(summaries: list[Summary], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(s) for s in summaries], indent=2) + "\n")
    logger.info(f"summary: {path}")
