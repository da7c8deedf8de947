"""Planning a batch: the pool's shape from the cluster's resources, the jobs (one per input
file, largest first), and the check that every node sees the inputs and output folders."""

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from nirstream.stream.config import RunConfig
from nirstream.stream.errors import ClusterError
from nirstream.stream.progress import duration
from nirstream.stream.sinks.spec import SinkSpec, parse_sink
from nirstream.stream.stats import Summary

DEFAULT_THREADS = 1
"""CPU threads per worker when neither ``--workers`` nor ``--worker-threads`` is given. On 2
cores, two single-thread workers colorized 1.45x the video per second of one process on two
threads, and one two-thread worker 0.79x (``benchmarks/cluster.py``): a model's small ops
scale poorly across threads, processes do not wait for each other. A worker holds one model
and its activations (about 250 bytes per pixel of a frame on the CPU) in memory."""
MARKER = ".nirstream-cluster-check"


@dataclass
class ClusterConfig:
    """Where and how wide: ``address`` is ``ray`` (``RAY_ADDRESS`` if set, else a local Ray
    started for the run) or ``ray://HOST:PORT``; ``workers`` and ``threads`` override the pool
    that :func:`pool_shape` derives from the cluster's resources; a file whose worker dies is
    tried at most ``tries`` times."""

    address: str = "ray"
    workers: int | None = None
    threads: int | None = None
    tries: int = 3


@dataclass
class Job:
    """One input file of the batch and what became of it."""

    index: int
    input: str  # absolute path (or URL), as every node sees it
    name: str
    targets: list[SinkSpec]
    frames: int | None  # expected frames, for progress
    fps: float | None  # the input's frame rate: what its frames are in seconds of video
    work: float  # what largest-first sorts on: frames x pixels, else the file's bytes
    tries: int = 0
    done: int = 0  # frames written by the attempt under way (or the last)
    worker_pid: int | None = None
    partials: set[str] = field(default_factory=set)  # partial files its attempts wrote
    summary: Summary | None = None
    error: str | None = None


@dataclass
class BatchSummary:
    """The batch as a whole: files finished and failed, video colorized, and its speed."""

    files: int
    finished: int
    stopped: int  # stopped by Ctrl-C: their outputs stay partial
    failed: int
    frames: int
    video_seconds: float
    wall_seconds: float
    workers: int
    interrupted: bool = False  # Ctrl-C: files not started are in no count but ``files``

    @property
    def speed(self) -> float:
        """Video-seconds colorized per wall-second: what a cluster is sized by."""
        return self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def line(self) -> str:
        not_started = self.files - self.finished - self.stopped - self.failed
        others = "".join(f", {count} {what}" for count, what in (
            (self.stopped, "stopped"), (self.failed, "failed"), (not_started, "not started")) if count)
        return (f"batch: {self.finished} of {self.files} files finished{others}, {self.frames} frames, "
                f"{duration(self.video_seconds)} of video in {duration(self.wall_seconds)} on {self.workers} "
                f"workers: {self.speed:.2f} video-seconds per second")


def pool_shape(resources: dict[str, float], workers: int | None, threads: int | None, files: int) -> tuple[int, int, bool]:
    """``(workers, CPU threads per worker, one GPU each)`` for a cluster with ``resources``.

    With GPUs: a worker per GPU, each with ``threads`` CPUs (default 1: decoding and encoding).
    Without: ``threads`` per worker (default :data:`DEFAULT_THREADS`, or the CPUs shared out
    among ``workers``) and as many workers as the CPUs hold. Never more workers than files.
    """
    cpus = max(1, int(resources.get("CPU", 1)))
    gpus = int(resources.get("GPU", 0))
    if gpus:
        count, threads = workers or gpus, threads or 1
    else:
        threads = threads or (max(1, cpus // workers) if workers else min(DEFAULT_THREADS, cpus))
        count = workers or max(1, cpus // threads)
    return max(1, min(count, files)), threads, bool(gpus)


def shared_storage_problems(markers: dict[str, str], inputs: list[str]) -> list[str]:
    """What this node cannot see: output folders whose marker file (path: token) is missing or
    not the driver's, and inputs that do not exist here. Empty when storage is shared."""
    problems = []
    for path, token in markers.items():
        try:
            seen = Path(path).read_text()
        except OSError:
            seen = None
        if seen != token:
            problems.append(f"the output folder {Path(path).parent}")
    for spec in inputs:
        if "://" not in spec and not (Path(spec).exists() or _glob_matches(spec)):
            problems.append(f"the input {spec}")
    return problems


def _glob_matches(spec: str) -> bool:
    from nirstream.stream.sources.images import glob_files, is_glob

    return is_glob(spec) and bool(glob_files(spec))


def plan_jobs(source_spec: str, sink_specs: list[str], config: RunConfig) -> tuple[list[Job], list[Path]]:
    """The batch's files, checked as a single-machine run checks them, with absolute paths every
    node can use, and the output folders the workers write in; live sources and sinks that show
    pictures are refused."""
    from nirstream.stream.run import open_inputs
    from nirstream.stream.sources import relative_names

    for text in sink_specs:
        if text in ("window", "preview", "foxglove") or text.startswith(("preview:", "http://", "foxglove:")):
            raise ClusterError(f"--cluster writes files: the {text} sink would open on a worker; "
                               "use a video or .mcap file, a folder/ or null")
    if config.realtime:
        raise ClusterError("--realtime replays one input as if it were live: run it without --cluster")
    inputs, sources, per_input = open_inputs(source_spec, sink_specs, config)
    try:
        jobs = []
        names = relative_names(source_spec, inputs) if len(inputs) > 1 else [s.info.name for s in sources]
        for index, (spec, name, source, targets) in enumerate(zip(inputs, names, sources, per_input)):
            info = source.info
            if info.live:
                raise ClusterError(f"--cluster colorizes recorded files; {info.name} is live: run it without --cluster")
            frames = info.frame_count if config.max_frames is None else min(info.frame_count or config.max_frames, config.max_frames)
            local = Path(spec).expanduser()
            is_path = local.exists() or _glob_matches(spec)
            path = os.path.abspath(local) if is_path else spec  # testsrc and URLs as they are
            jobs.append(Job(
                index=index, input=path, name=name,
                targets=[replace(t, path=t.path.resolve(), text=str(t.path.resolve())) if t.path else t for t in targets],
                frames=frames, fps=info.fps,
                work=frames * info.width * info.height if frames else (local.stat().st_size if local.is_file() else 0),
            ))
    finally:
        for source in sources:
            source.close()
    specs = [parse_sink(text) for text in sink_specs]
    folders = sorted({(spec.path if spec.kind == "folder" else spec.path.parent).resolve() for spec in specs if spec.path})
    return jobs, folders


def resources_line(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources[key]:g} {key}s" for key in ("CPU", "GPU") if resources.get(key))
