"""``nirstream run --cluster``: a batch of recorded files colorized by a pool of Ray actors.

The unit of work is one input file. Each actor (:class:`ColorizeWorker`) loads the model once
on its own device, one GPU per actor where the cluster has GPUs and otherwise a stated number
of CPU threads, and colorizes whole files with the code a single-machine run uses
(:func:`nirstream.stream.run.colorize_input`): temporal smoothing and timestamps stay per file,
and each output is what ``nirstream run`` writes for that file alone. The driver hands files
out largest first, retries a file whose worker died on another worker, shows one progress bar
over all files, and summarises each file and the batch.

Workers write their outputs themselves, under the partial name a single-machine run uses, so
the output folder must be shared storage that every node mounts at the same path: the driver
checks that before the first file starts. Ray is an optional extra (``nirstream[ray]``): this
module imports it only when a run asks for a cluster.
"""

import os
import re
import secrets
import shutil
import socket
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from loguru import logger
from tqdm import tqdm

from nirstream.core.errors import NirstreamError
from nirstream.stream.allocator import worker_environment
from nirstream.stream.config import RunConfig
from nirstream.stream.errors import ClusterError
from nirstream.stream.progress import EVERY_S, duration
from nirstream.stream.sinks.spec import SinkSpec, parse_sink
from nirstream.stream.stats import Summary

RAY_MISSING = "--cluster needs Ray, an optional extra: pip install 'nirstream[ray]'"
DEFAULT_THREADS = 1
"""CPU threads per worker when neither ``--workers`` nor ``--worker-threads`` is given. On 2
cores, two single-thread workers colorized 1.45x the video per second of one process on two
threads, and one two-thread worker 0.79x (``benchmarks/cluster.py``): a model's small ops
scale poorly across threads, processes do not wait for each other. A worker holds one model
and its activations (about 250 bytes per pixel of a frame on the CPU) in memory."""
REPORT_EVERY_S = 0.5
"""How often a worker tells the driver how far its file has come."""
STOP_WAIT_S = 60.0
"""After Ctrl-C, how long the driver waits for workers to close their files as partial."""
START_TIMEOUT_S = 300.0
"""How long the pool waits for its workers to start and load the model before it says the
cluster cannot place them."""
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


def run_on_cluster(
    source_spec: str, sink_specs: list[str], config: RunConfig, cluster: ClusterConfig, *,
    summary_json: Path | None = None, bars: bool = False, debug: bool = False, log_json: bool = False,
    on_progress: Callable[[list[Job]], None] | None = None,
) -> tuple[list[Summary], BatchSummary]:
    """Colorize every file ``source_spec`` names on a Ray cluster; one summary per finished file
    and the batch's. Raises :class:`ClusterError` at the end when a file failed every try.

    ``on_progress`` is called on the driver with the jobs about twice a second.
    """
    ray = import_ray()
    from nirstream.stream.run import model_for, warn_without_sinks, write_summaries

    jobs, folders = plan_jobs(source_spec, sink_specs, config)
    if config.weights:
        config = replace(config, weights=str(Path(config.weights).expanduser().resolve()))
    model_for(config)  # a bad --weights or --model fails here, once, not in every worker
    warn_without_sinks(sink_specs)
    started_here = connect(ray, cluster.address, quiet=log_json)
    try:
        pool = WorkerPool(ray, config, cluster, jobs, log_level="DEBUG" if debug else "WARNING")
        pool.start(folders)
        batch = pool.run(bars=bars, on_progress=on_progress)
    finally:
        if started_here:
            ray.shutdown()
    summaries = [job.summary for job in jobs if job.summary is not None]
    logger.bind(batch={**asdict(batch), "speed": batch.speed}).info(batch.line())
    if summary_json is not None:
        write_summaries(summaries, summary_json)
    failed = [job for job in jobs if job.error is not None]
    if failed and not batch.interrupted:
        listed = "; ".join(f"{job.name}: {job.error}" for job in failed[:3]) + ("; ..." if len(failed) > 3 else "")
        raise ClusterError(f"{len(failed)} of {len(jobs)} files failed ({listed})")
    return summaries, batch


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError(RAY_MISSING) from None
    return ray


def connect(ray: Any, address: str, *, quiet: bool = False) -> bool:
    """Join the cluster ``address`` names, or start a local one; True when this run started it
    (and so shuts it down). A Ray already initialised in this process is used as it is.

    ``quiet`` (``--log-json``): only Ray's errors, and no worker output relayed, so that every
    line on stderr stays a JSON object; the workers' warnings then stay in Ray's log files.
    """
    if ray.is_initialized():
        return False
    if address == "ray":
        address = os.environ.get("RAY_ADDRESS") or "local"
    elif not address.startswith("ray://"):
        raise ClusterError(f"unknown --cluster {address!r}: expected ray (a local Ray, or RAY_ADDRESS) or ray://HOST:PORT")
    options = {"include_dashboard": False, "logging_level": "ERROR" if quiet else "WARNING", "log_to_driver": not quiet}
    if address == "local":  # a new Ray for this run, never one an earlier `ray start` left running
        options["object_store_memory"] = 256 * 2**20  # frames never pass through it: files and small results
    try:
        ray.init(address=address, **options)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as error:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {str(error).splitlines()[0]}") from error
    where = "a local Ray" if address == "local" else address
    logger.info(f"cluster: {where}, {_resources_line(ray.cluster_resources())}")
    return True


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


class WorkerPool:
    """The actors and the loop that feeds them: largest file first, a failed worker replaced and
    its file retried elsewhere, Ctrl-C passed on as a clean stop."""

    def __init__(self, ray: Any, config: RunConfig, cluster: ClusterConfig, jobs: list[Job], *, log_level: str) -> None:
        self.ray, self.config, self.cluster, self.jobs = ray, config, cluster, jobs
        resources = ray.cluster_resources()
        count, self.threads, self.gpu = pool_shape(resources, cluster.workers, cluster.threads, len(jobs))
        self.log_level = log_level
        # on the head node, which outlives any worker's node (the driver reads it every loop)
        head = {"resources": {"node:__internal_head__": 0.001}} if "node:__internal_head__" in resources else {}
        self.tally = ray.remote(Tally).options(num_cpus=0, **head).remote()
        self.actors = [self._new_actor() for _ in range(count)]
        self.loading: dict[Any, Any] = {}  # the load() call of each actor still starting: ref -> actor
        self.pids: dict[int, int] = {}  # id(actor) -> its process id, once loaded
        per_worker = "1 GPU" if self.gpu else f"{self.threads} CPU thread{'s' if self.threads > 1 else ''}"
        logger.info(f"cluster: {count} workers of {per_worker} each, {len(jobs)} files, largest first")

    def _new_actor(self) -> Any:
        options = {"num_cpus": self.threads, "num_gpus": 1 if self.gpu else 0, "max_concurrency": 2, "max_restarts": 0}
        if tuned := worker_environment():  # malloc tuned from the process's start, as `nirstream run` tunes it
            options["runtime_env"] = {"env_vars": tuned}
        return self.ray.remote(ColorizeWorker).options(**options).remote(self.config, self.threads, self.log_level)

    def start(self, folders: list[Path]) -> None:
        """Check that every worker sees the inputs, the weights and the output folders as the
        driver does (shared storage mounted at the same path: a marker file with a fresh token
        proves it), then load the model on each; a one-line error when one cannot."""
        inputs = [job.input for job in self.jobs if os.path.isabs(job.input)]
        inputs += [self.config.weights] if self.config.weights else []
        markers = {}
        try:
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
                token = secrets.token_hex(8)
                marker = folder / f"{MARKER}-{token}"
                marker.write_text(token)
                markers[str(marker)] = token
            answers = self._within_start_time([actor.check_storage.remote(markers, inputs) for actor in self.actors])
        finally:
            for marker in markers:
                Path(marker).unlink(missing_ok=True)
        for problems, place in answers:
            if problems:
                raise ClusterError(
                    f"the worker on {place} cannot see {problems[0]}: --cluster needs the inputs, the weights and "
                    "the output folder on storage every node mounts at the same path"
                )
        pids = self._within_start_time([actor.load.remote() for actor in self.actors])
        self.pids = {id(actor): pid for actor, pid in zip(self.actors, pids)}

    def _within_start_time(self, refs: list) -> list:
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=START_TIMEOUT_S)
        if len(ready) < len(refs):
            raise ClusterError(
                f"{len(refs) - len(ready)} of {len(refs)} workers did not start within {START_TIMEOUT_S:.0f} s: "
                "the cluster may not have the CPUs or GPUs they ask for (see --workers, --worker-threads)"
            )
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayError as error:
            raise ClusterError(f"a worker failed to start: {_cause(error)}") from error

    def run(self, *, bars: bool, on_progress: Callable[[list[Job]], None] | None) -> BatchSummary:
        started = time.monotonic()
        progress = _BatchProgress(self.jobs, bars=bars)
        queue = deque(sorted(self.jobs, key=lambda job: job.work, reverse=True))
        idle, running, interrupted = list(self.actors), {}, False
        try:
            try:
                while queue or running:
                    while queue and idle:
                        actor, job = idle.pop(0), queue.popleft()
                        job.tries += 1
                        job.worker_pid = self.pids.get(id(actor))
                        ref = actor.colorize.remote(job.index, job.tries, job.input, job.targets, self.tally)
                        running[ref] = (actor, job)
                    ready, _ = self.ray.wait(list(running), num_returns=1, timeout=REPORT_EVERY_S)
                    self._read_tally()
                    self._note_loaded(running)
                    for ref in ready:
                        actor, job = running.pop(ref)
                        self._finish(ref, actor, job, idle, queue)
                    progress.update()
                    if on_progress is not None:
                        on_progress(self.jobs)
            except KeyboardInterrupt:
                interrupted = True
                logger.warning("interrupted: stopping the workers; files under way stay partial")
                self._stop(running)
        finally:
            progress.close()
        done = [job for job in self.jobs if job.summary is not None]
        stopped = sum(job.summary.interrupted for job in done)
        return BatchSummary(
            files=len(self.jobs), finished=len(done) - stopped, stopped=stopped,
            failed=sum(job.error is not None for job in self.jobs),
            frames=sum(job.summary.written for job in done),
            video_seconds=sum(job.summary.written / job.fps for job in done if job.fps),
            wall_seconds=time.monotonic() - started, workers=len(self.actors), interrupted=interrupted,
        )

    def _read_tally(self) -> None:
        try:
            state = self.ray.get(self.tally.read.remote(), timeout=10)
        except self.ray.exceptions.RayError:  # progress is lost, not the batch
            return
        for index, (attempt, frames, partials) in state.items():
            job = self.jobs[index]
            if attempt == job.tries and job.summary is None:
                job.done = frames
            job.partials.update(partials)

    def _note_loaded(self, running: dict) -> None:
        """Replacement workers that finished loading: their process ids, for their jobs."""
        if not self.loading:
            return
        ready, _ = self.ray.wait(list(self.loading), num_returns=len(self.loading), timeout=0)
        for ref in ready:
            actor = self.loading.pop(ref)
            try:
                self.pids[id(actor)] = self.ray.get(ref)
            except self.ray.exceptions.RayError:
                continue  # its colorize call fails too, and is retried
            for worker, job in running.values():
                if worker is actor:
                    job.worker_pid = self.pids[id(actor)]

    def _finish(self, ref: Any, actor: Any, job: Job, idle: list, queue: deque) -> None:
        """Take a finished call's result: a summary, an input error (not retried), or a failure
        of the worker (killed, out of memory, a GPU fault, its node lost): that worker is
        replaced and the file tried again elsewhere while tries remain."""
        try:
            job.summary = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, NirstreamError):  # the file itself is bad: another try gives the same
                idle.append(actor)
                job.error = _cause(error)
                logger.error(f"{job.name}: {job.error}")
                return
            idle.append(self._replace(actor))
            self._retry(job, queue, _cause(error))
            return
        except self.ray.exceptions.RayError:
            idle.append(self._replace(actor))
            self._retry(job, queue, "its worker died (killed, out of memory, or its node lost)")
            return
        idle.append(actor)
        job.summary.name = job.name  # its path below the glob's folder: the base name may repeat
        job.done = job.summary.written
        logger.bind(summary=asdict(job.summary)).info(job.summary.table())
        for partial in job.partials:  # what earlier, failed tries left: the file is complete now
            if Path(partial).is_dir():  # a rosbag2 folder's partial copy
                shutil.rmtree(partial, ignore_errors=True)
            else:
                Path(partial).unlink(missing_ok=True)

    def _replace(self, actor: Any) -> Any:
        """A new worker in place of ``actor``, which is killed first (one that is only
        unreachable would otherwise go on writing, and hold its GPU). Not waited for: its
        first file queues behind its model's loading."""
        self.ray.kill(actor, no_restart=True)
        self.pids.pop(id(actor), None)
        replacement = self._new_actor()
        self.actors[self.actors.index(actor)] = replacement
        self.loading[replacement.load.remote()] = replacement
        return replacement

    def _retry(self, job: Job, queue: deque, reason: str) -> None:
        if job.tries < self.cluster.tries:
            logger.warning(f"{job.name}: {reason}; trying again on another worker (try {job.tries + 1} of {self.cluster.tries})")
            job.done = 0
            queue.appendleft(job)
        else:
            kept = f"; partial files kept: {', '.join(sorted(job.partials))}" if job.partials else ""
            job.error = f"{reason} (failed {job.tries} tries{kept})"
            logger.error(f"{job.name}: {job.error}")

    def _stop(self, running: dict) -> None:
        """Ask every busy worker to stop and wait for their files to close (as partial)."""
        for actor, _ in running.values():
            actor.stop.remote()
        ready, _ = self.ray.wait(list(running), num_returns=len(running), timeout=STOP_WAIT_S)
        for ref in ready:
            actor, job = running.pop(ref)
            try:
                job.summary = self.ray.get(ref)
            except self.ray.exceptions.RayError as error:
                job.error = f"stopped: {_cause(error)}"
            else:
                logger.bind(summary=asdict(job.summary)).info(job.summary.table())


class _BatchProgress:
    """One bar over every file's frames (a terminal), else a line every :data:`EVERY_S` seconds."""

    def __init__(self, jobs: list[Job], *, bars: bool) -> None:
        self.jobs, self.bars = jobs, bars
        counts = [job.frames for job in jobs]
        self.total = sum(counts) if all(c is not None for c in counts) else None
        self.bar = tqdm(total=self.total, unit="frame", desc=f"{len(jobs)} files", dynamic_ncols=True, disable=not bars)
        self.started = self.last = time.monotonic()

    def update(self) -> None:
        done = sum(job.done for job in self.jobs)
        finished = sum(job.summary is not None for job in self.jobs)
        self.bar.n = done
        self.bar.set_postfix_str(f"{finished}/{len(self.jobs)} files", refresh=True)
        now = time.monotonic()
        if self.bars or now - self.last < EVERY_S:
            return
        self.last = now
        fps = done / (now - self.started)
        line = f"{done}{f'/{self.total}' if self.total else ''} frames, {fps:.1f} fps, {finished} of {len(self.jobs)} files"
        if self.total and fps > 0:
            line += f", ETA {duration((self.total - done) / fps)}"
        logger.info(line)

    def close(self) -> None:
        self.bar.close()


def _cause(error: BaseException) -> str:
    """One line for what went wrong in a worker, without the colour codes Ray puts in."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, NirstreamError):
        text = str(cause)
    elif cause is not None:
        text = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
    else:
        text = str(error).strip() or type(error).__name__
    return re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()[0]


def _resources_line(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources[key]:g} {key}s" for key in ("CPU", "GPU") if resources.get(key))
