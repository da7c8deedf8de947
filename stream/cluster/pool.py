"""The driver side: connecting to Ray, the pool of workers, largest-first hand-out, retries of
files whose worker died, one progress bar over the batch, and the batch's summary."""

import os
import re
import secrets
import shutil
import time
from collections import deque
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

from loguru import logger
from tqdm import tqdm

from nirstream.core.errors import NirstreamError
from nirstream.stream.allocator import worker_environment
from nirstream.stream.config import RunConfig
from nirstream.stream.errors import ClusterError
from nirstream.stream.progress import EVERY_S, duration
from nirstream.stream.stats import Summary

from .plan import MARKER, BatchSummary, ClusterConfig, Job, resources_line, plan_jobs, pool_shape
from .worker import REPORT_EVERY_S, ColorizeWorker, Tally

RAY_MISSING = "--cluster needs Ray, an optional extra: pip install 'nirstream[ray]'"
STOP_WAIT_S = 60.0
"""After Ctrl-C, how long the driver waits for workers to close their files as partial."""
START_TIMEOUT_S = 300.0
"""How long the pool waits for its workers to start and load the model before it says the
cluster cannot place them."""

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
    from nirstream.core.models import create_model
    from nirstream.stream.run import warn_without_sinks, write_summaries

    jobs, folders = plan_jobs(source_spec, sink_specs, config)
    if config.weights:
        config = replace(config, weights=str(Path(config.weights).expanduser().resolve()))
    # a bad --weights or --model fails here, once, not in every worker; on the CPU: the driver may have no GPU
    create_model(config.weights or config.model, device="cpu", untrained=True)
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
    logger.info(f"cluster: {where}, {resources_line(ray.cluster_resources())}")
    return True


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
