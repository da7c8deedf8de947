"""``nirstream bench``: throughput, latency and memory of the GPU stage, and how close it runs to the device's floor.

A benchmark times what a camera pipeline pays, end to end: decoded ``uint8`` frames in host
memory go through :class:`~nirstream.stream.colorizer.Colorizer` (copy in, normalise, tile,
infer, blend, copy out, with its CUDA streams) and come back as RGB frames in host memory.
Frames are synthetic scenes generated before the clock starts, so decoding costs nothing, and
each is there as soon as the colorizer asks: on CUDA, where the colorizer hands frame n on once
frame n+1 has arrived, a live camera adds up to one frame interval to the latency measured here.

Per configuration it reports fps, per-frame latency p50/p99, peak GPU memory, the model's
FLOPs per frame (every tile the colorizer runs, padding included), the device's measured
matrix rate in that precision, the floor those two imply (the fastest the frame could be), and
the fraction of that rate the run reached.
"""

import functools
import gc
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from loguru import logger

from nirstream.core.errors import ConfigError
from nirstream.core.models.cost import forward_flops
from nirstream.stream.colorizer import Colorizer, ColorizerConfig
from nirstream.stream.colorizer.backends import HALF_DTYPES
from nirstream.stream.colorizer.colorizer import synthetic_nir
from nirstream.stream.colorizer.guided import scaled_size
from nirstream.stream.errors import SourceError
from nirstream.stream.frame import Frame
from nirstream.stream.sources.base import Source
from nirstream.stream.stats import Stage

RESOLUTIONS = ((640, 512), (1280, 720), (1920, 1080))
DISTINCT_FRAMES = 8  # cycled: enough that no cache holds "the" frame, cheap to generate


@dataclass
class BenchResult:
    """One configuration's numbers; times in ms, memory in MiB, FLOPs in GFLOP, rates in TFLOP/s."""

    model: str
    backend: str
    precision: str
    width: int
    height: int
    device: str
    tile: int
    tile_batch: int | None
    frames: int
    fps: float
    latency_p50_ms: float
    latency_p99_ms: float
    gpu_memory_mib: float | None
    gflops_per_frame: float
    peak_tflops: float
    floor_ms: float
    fraction_of_peak: float

    def row(self) -> str:
        memory = f"{self.gpu_memory_mib:.0f}" if self.gpu_memory_mib is not None else "-"
        return (
            f"| {self.model} | {self.backend} | {self.precision} | {self.width}x{self.height} | {self.fps:.1f} | "
            f"{self.latency_p50_ms:.1f} | {self.latency_p99_ms:.1f} | {memory} | {self.gflops_per_frame:.1f} | "
            f"{self.floor_ms:.2f} | {100 * self.fraction_of_peak:.1f} % |"
        )


TABLE_HEADER = (
    "| model | backend | precision | size | fps | p50 ms | p99 ms | GPU MiB | GFLOP/frame | floor ms | of peak |\n"
    "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def table(results: list[BenchResult]) -> str:
    """A Markdown table of results, one row each."""
    return "\n".join([TABLE_HEADER, *(r.row() for r in results)])


@functools.cache
def measure_peak_tflops(device: torch.device, precision: str, seconds: float = 1.0) -> float:
    """The device's matrix rate in TFLOP/s: the best of repeated square matmuls in ``precision``.

    The "peak" a model's FLOPs are held against: measured, not the datasheet's number; once
    per device and precision, so every row of a run is held against the same rate.
    """
    dtype = HALF_DTYPES.get(precision, torch.float32)
    if device.type == "cpu" and dtype != torch.float32:
        dtype = torch.float32  # CPU autocast runs the matmuls that matter in fp32 here
    size = 8192 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    deadline = time.perf_counter() + seconds
    runs = 0
    while runs < 3 or time.perf_counter() < deadline:
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
        runs += 1
    return 2 * size**3 / best / 1e12


def frame_flops(colorizer: Colorizer, width: int, height: int, model: nn.Module | None = None) -> float:
    """FLOPs the colorizer's model spends on one frame: each model call it makes, as it tiles it.
    ``model``: count on this one instead (the fp32 original of an int8 copy, which the FLOP
    counter cannot run: quantized kernels have no meta implementation; the count is the same)."""
    config = colorizer.config
    model = model if model is not None else colorizer.model
    tiles = colorizer.tiles_per_frame(height, width)
    if tiles == 1:
        return sum(forward_flops(model, *scaled_size(height, width, config.fast_scale)))
    batch = colorizer.tile_batch or 1
    calls = -(-tiles // batch)
    padded = calls * batch if colorizer.fixed_batch else tiles  # TensorRT runs full batches only
    return padded * sum(forward_flops(model, config.tile_size, config.tile_size))


def bench_one(
    model: torch.nn.Module, name: str, config: ColorizerConfig, width: int, height: int, frames: int,
    pool: list[np.ndarray] | None = None,
) -> BenchResult:
    """Time ``frames`` frames of ``width×height`` through a fresh colorizer (after its warm-up).

    ``pool``: the frames to cycle through (a recorded input's, :func:`recorded_frames`); by
    default synthetic scenes.

    GPU memory is the allocator's peak reservation (CUDA-graph pools included; TensorRT's own
    workspace is outside it).
    """
    colorizer = Colorizer(model, config)
    device = colorizer.device
    colorizer.warmup(height, width)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    if pool is None:
        pool = [np.roll(synthetic_nir(height, width), 17 * k, axis=1) for k in range(DISTINCT_FRAMES)]
    latencies = []
    start = time.perf_counter()
    for frame in colorizer.run(_frames(pool, frames)):
        latencies.append((frame.time_of(Stage.COLORIZED) - frame.time_of(Stage.CAPTURED)) * 1e3)
    wall = time.perf_counter() - start
    # Reserved, not allocated: CUDA graphs replay in a private pool the allocator's peak does not see.
    memory = torch.cuda.max_memory_reserved(device) / 2**20 if device.type == "cuda" else None
    flops = frame_flops(colorizer, width, height, model)
    peak = measure_peak_tflops(device, colorizer.precision)
    fps = len(latencies) / wall
    return BenchResult(
        model=name, backend=config.backend, precision=colorizer.precision, width=width, height=height,
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        tile=colorizer.tile_choice(*scaled_size(height, width, config.fast_scale)).tile, tile_batch=colorizer.tile_batch, frames=len(latencies), fps=fps,
        latency_p50_ms=float(np.percentile(latencies, 50)), latency_p99_ms=float(np.percentile(latencies, 99)),
        gpu_memory_mib=memory, gflops_per_frame=flops / 1e9, peak_tflops=peak,
        floor_ms=flops / (peak * 1e12) * 1e3, fraction_of_peak=flops * fps / (peak * 1e12),
    )


def bench_matrix(
    models: dict[str, torch.nn.Module],
    base: ColorizerConfig,
    backends: list[str],
    precisions: list[str],
    sizes: list[tuple[int, int]],
    frames: int,
    pool: list[np.ndarray] | None = None,
) -> list[BenchResult]:
    """Every combination of model, backend, precision and size, one after another; with a
    recorded ``pool`` of frames, at their size only."""
    results = []
    if pool is not None:
        sizes = [(pool[0].shape[1], pool[0].shape[0])]
    for (name, model), backend, precision, (width, height) in itertools.product(models.items(), backends, precisions, sizes):
        try:
            config = replace(base, backend=backend, precision=precision)
        except ConfigError as error:  # int8 with compile: the other combinations still run
            logger.warning(f"bench {name} {backend} {precision}: skipped ({error})")
            continue
        logger.info(f"bench {name} {backend} {precision} {width}x{height}: {frames} frames")
        result = bench_one(model, name, config, width, height, frames, pool)
        _release_compiled()
        logger.info(
            f"  {result.fps:.1f} fps, p50 {result.latency_p50_ms:.1f} ms, p99 {result.latency_p99_ms:.1f} ms, "
            f"{100 * result.fraction_of_peak:.1f} % of {result.peak_tflops:.1f} TFLOP/s"
        )
        results.append(result)
    return results


def write_json(results: list[BenchResult], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return path


def write_chart(results: list[BenchResult], path: Path) -> Path:
    """Two panels: fps against the floor's fps, and latency p50/p99, one bar group per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.model}\n{r.backend} {r.precision}\n{r.width}x{r.height}" for r in results]
    x = np.arange(len(results))
    fig, (ax_fps, ax_lat) = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(results) + 4), 5))
    ax_fps.bar(x, [r.fps for r in results], color="tab:blue", label="measured fps")
    ax_fps.scatter(x, [1e3 / r.floor_ms for r in results], color="tab:red", marker="_", s=400,
                   label="fps at the floor (FLOPs / measured peak)")
    ax_fps.set_yscale("log")
    ax_fps.set_ylabel("frames per second")
    ax_lat.bar(x - 0.2, [r.latency_p50_ms for r in results], width=0.4, label="p50")
    ax_lat.bar(x + 0.2, [r.latency_p99_ms for r in results], width=0.4, label="p99")
    ax_lat.set_ylabel("latency per frame (ms)")
    for ax in (ax_fps, ax_lat):
        ax.set_xticks(x, labels, fontsize=7)
        ax.legend(fontsize=8)
    fig.suptitle(f"nirstream bench on {results[0].device}" if results else "nirstream bench")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def recorded_frames(source: Source, count: int) -> list[np.ndarray]:
    """Up to ``count`` frames of a recorded input (a bag, a video, images), decoded before the
    clock starts like the synthetic ones; a SourceError if it has none or they differ in size."""
    pool = []
    with source:
        for frame in source:
            if pool and frame.nir.shape != pool[0].shape:
                raise SourceError(f"{source.info.name}: frames of several sizes; bench takes one size (--resize in run)")
            pool.append(frame.nir)
            if len(pool) >= count:
                break
    if not pool:
        raise SourceError(f"{source.info.name}: no frames to benchmark")
    return pool


def _frames(pool: list[np.ndarray], count: int) -> Iterator[Frame]:
    """Frames stamped as they are handed over: latency is from here to RGB in host memory."""
    for index in range(count):
        yield Frame(index=index, pts=None, captured_at=time.monotonic(), nir=pool[index % len(pool)])


def _release_compiled() -> None:
    """Drop the last configuration's compiled graphs and memory pools before the next one."""
    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
