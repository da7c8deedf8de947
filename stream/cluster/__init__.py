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

from .plan import DEFAULT_THREADS, BatchSummary, ClusterConfig, Job, plan_jobs, pool_shape, shared_storage_problems
from .pool import WorkerPool, connect, import_ray, run_on_cluster
from .worker import ColorizeWorker, Tally

__all__ = [
    "DEFAULT_THREADS", "BatchSummary", "ClusterConfig", "ColorizeWorker", "Job", "Tally", "WorkerPool",
    "connect", "import_ray", "plan_jobs", "pool_shape", "run_on_cluster", "shared_storage_problems",
]
