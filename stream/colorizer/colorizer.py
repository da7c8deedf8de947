"""The GPU stage: raw NIR frames in, RGB frames out, with the device and dtype policy in one place.

:class:`Colorizer` is the only code in nirstream that moves tensors to CUDA or casts them. Per
frame: copy the raw uint8/uint16 frame to the device (fewer bytes than float), normalise
(:mod:`.normalize`), run the model whole or in blended tiles (:mod:`.tiling`) under the chosen
precision and backend, and bring back ``H×W×3`` uint8 RGB.

On CUDA, :meth:`Colorizer.run` keeps two frames in flight: the host-to-device copy of frame
n+1 runs on its own stream while frame n computes, and the device-to-host copy of frame n on
another stream while frame n+1 computes, through pinned host buffers allocated once per
shape. The host waits only for the result it is about to hand on. The price is one frame of
look-ahead: frame n is yielded once frame n+1 has been read from the input.
"""

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

import numpy as np
import torch
from loguru import logger
from torch import Tensor, nn

from nirstream.core.device import resolve_device
from nirstream.core.errors import ConfigError
from nirstream.core.models.interface import ColorizationModel
from nirstream.stream.choices import Backend, Device, Precision
from nirstream.stream.frame import Frame
from nirstream.stream.stats import Stage

from .autotune import choose_half_precision, cpu_has_bf16, largest_fitting_batch
from .backends import HALF_DTYPES, dynamic_int8, make_backend, require_tensorrt
from .normalize import Levels, normalize
from .guided import downscale, guided_upsample, scaled_size
from .memory import TileChoice, budget_bytes, choose_tile, measure_bytes_per_pixel
from .temporal import TemporalConfig, TemporalSmoother
from .tiling import Tiler, check_tiling

AUTO_TILE = 640
"""``tile: auto``: the tile edge where frames are tiled (CUDA; the CPU above its memory budget)."""

CPU_TILE_BATCH = 4
"""``tile_batch: auto`` on the CPU: memory is not the limit there, and larger batches do not run faster."""


@dataclass
class ColorizerConfig:
    """How the GPU stage runs.

    ``precision`` fp16/bf16 is autocast (weights stay fp32; the selective scan keeps itself in
    fp32); the TensorRT backend casts the model instead. ``auto`` (the default) times fp32
    against fp16 and bf16 on CUDA, against bf16 on a CPU with bf16 instructions, and keeps the
    fastest whose output stays within 45 dB of fp32 (:mod:`.autotune`); fp32 on other CPUs.
    ``int8`` (CPU, eager) runs a copy whose Linear layers hold int8 weights
    (:func:`.backends.dynamic_int8`): a few percent faster than fp32 where there is no bf16.
    ``backend``: ``eager``, ``compile`` (torch.compile; CUDA graphs on CUDA) or
    ``tensorrt`` (engines cached in ``engine_cache``, default ``~/.cache/nirstream/engines``).
    ``tile`` 0 runs whole frames; a number runs frames larger than it in tiles of ``tile ×
    tile`` overlapping by ``overlap``, ``tile_batch`` per model call (``auto``: the largest
    batch that fits in GPU memory, measured). ``auto`` (the default) decides per frame size
    (:mod:`.memory`): 640-px tiles on CUDA, whole frames on the CPU while their measured
    memory fits ``memory_budget_gb`` (``null``: half the memory available), 640-px tiles above
    it; the choice is logged once per size. Tiles cost a CPU 2.5-3x at 720p for the same output.
    ``warmup`` runs a dummy frame before the first
    frame of each new size, so compilation and allocation stay out of the latency figures.
    ``temporal`` smooths colour across frames along the motion (videos and cameras by default,
    not image folders; :mod:`.temporal`).
    ``fast_scale`` below 1 is the fast mode: the model runs on the frame scaled by it and a
    guided upsampling restores full-resolution detail from the NIR (:mod:`.guided`).
    ``threads``: the CPU threads torch runs the model on (0: torch's default, one per core). On a
    CPU another process keeps busy, fewer threads than cores run faster: with one core of two
    taken, one thread ran a frame in 433 ms against 734 ms with two (:func:`busy_cpu_advice`).
    """

    device: Device = "auto"
    precision: Precision = "auto"
    backend: Backend = "eager"
    engine_cache: str | None = None
    channels_last: bool = False
    tile: int | str = "auto"
    memory_budget_gb: float | None = None
    overlap: int = 64
    tile_batch: int | str = 4
    levels: Levels = field(default_factory=Levels)
    warmup: bool = True
    fast_scale: float = 1.0
    threads: int = 0
    temporal: TemporalConfig = field(default_factory=TemporalConfig)

    @property
    def tile_size(self) -> int:
        """The tile edge whenever frames are tiled (0: never)."""
        return AUTO_TILE if self.tile == "auto" else self.tile

    def __post_init__(self) -> None:
        for name, kind in [("device", Device), ("precision", Precision), ("backend", Backend)]:
            allowed = get_args(kind)
            if getattr(self, name) not in allowed:
                raise ConfigError(f"colorizer {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.precision == "int8" and self.backend != "eager":
            raise ConfigError(f"precision int8 runs with backend eager, not {self.backend}")
        if self.temporal.enabled not in (True, False, "auto"):
            raise ConfigError(f"colorizer temporal.enabled must be true, false or auto, got {self.temporal.enabled!r}")
        if not 0.0 < self.fast_scale <= 1.0:
            raise ConfigError(f"colorizer fast_scale must be in (0, 1], got {self.fast_scale}")
        if self.tile_batch != "auto" and not (isinstance(self.tile_batch, int) and self.tile_batch >= 1):
            raise ConfigError(f"colorizer tile_batch must be a number >= 1 or auto, got {self.tile_batch!r}")
        if self.tile != "auto" and not (isinstance(self.tile, int) and self.tile >= 0):
            raise ConfigError(f"colorizer tile must be a number >= 0 or auto, got {self.tile!r}")
        if self.memory_budget_gb is not None and not self.memory_budget_gb > 0:
            raise ConfigError(f"colorizer memory_budget_gb must be > 0 or null, got {self.memory_budget_gb}")
        if self.tile_size:
            try:
                check_tiling(self.tile_size, self.overlap)
            except ValueError as exc:
                raise ConfigError(f"colorizer: {exc}") from exc


class Colorizer:
    """Colorizes :class:`Frame` objects with ``model`` (NIR ``B×1×H×W`` [0, 1] to RGB ``B×3×H×W`` [0, 1])."""

    def __init__(self, model: nn.Module, config: ColorizerConfig | None = None) -> None:
        self.config = config or ColorizerConfig()
        self.device = resolve_device(self.config.device)
        if self.config.threads > 0:
            torch.set_num_threads(self.config.threads)
        memory_format = torch.channels_last if self.config.channels_last else torch.contiguous_format
        self.model = model.eval().requires_grad_(False).to(self.device, memory_format=memory_format)
        # A ColorizationModel's stride pattern repeats every ``multiple`` pixels of its padded
        # input, where tiles are placed; any other module (a test's stand-in) is taken to be
        # shift-invariant.
        self._align = model.multiple if isinstance(model, ColorizationModel) else 1
        tile_batch = self.config.tile_batch
        self._tune_batch = tile_batch == "auto" and self.device.type == "cuda"
        try:
            self._tiler = (
                # A TensorRT engine takes minutes to build per input shape: feed it full batches only.
                # torch.compile and CUDA graphs record a short last batch once, cheaply, and
                # filling it up would cost compute on every frame (6 tiles at batch 4 run as 8).
                Tiler(self.config.tile_size, self.config.overlap, tile_batch if isinstance(tile_batch, int) else CPU_TILE_BATCH,
                      self._align, fixed_batch=self.config.backend == "tensorrt")
                if self.config.tile_size
                else None
            )
        except ValueError as exc:
            raise ConfigError(f"colorizer: {exc} (this model's stride is {self._align}: raise engine.tile)") from exc
        if self.config.backend == "tensorrt":
            require_tensorrt(self.device)  # now, not at the first frame: precision auto builds the backend late
        self.precision = self.config.precision
        if self.precision == "auto" and self.device.type != "cuda" and not cpu_has_bf16():
            self.precision = "fp32"  # no half type this CPU runs faster
        if self.precision == "int8":
            if self.device.type != "cpu":
                raise ConfigError("precision int8 runs on the CPU only; use fp16 or bf16 on CUDA")
            self.model = dynamic_int8(self.model)
            if not any("quantized" in type(m).__module__ for m in self.model.modules()):
                raise ConfigError(f"precision int8 quantizes Linear layers, and {type(model).__name__} has none; use fp32")
        self._net = None if self.precision == "auto" else self._make_net()
        self._smoother = self._new_smoother() if self.config.temporal.enabled is True else None
        self._warmed: set[tuple[int, int]] = set()
        self._tile_choices: dict[tuple[int, int], TileChoice] = {}
        self._bytes_per_pixel: float | None = None
        self._measured = False
        self._pinned: dict[tuple[tuple[int, ...], torch.dtype], list[tuple[Tensor, Tensor]]] = {}
        self._slot = 0

    @property
    def fixed_batch(self) -> bool:
        """Whether a short last batch of tiles is filled up to ``tile_batch`` (TensorRT)."""
        return self._tiler is not None and self._tiler.fixed_batch

    @property
    def tile_batch(self) -> int | None:
        """Tiles per model call (after auto-tuning), or None when frames always run whole."""
        return self._tiler.tile_batch if self._tiler is not None else None

    def warmup(self, height: int, width: int) -> None:
        """Run dummy frames of this size: tune, compile, plan tiles and allocate before real frames.

        Two runs under CUDA graphs (the first warms up, the second records), one otherwise.
        """
        self._autotune(height, width)
        runs = 2 if self.device.type == "cuda" and self.config.backend == "compile" else 1
        raw = torch.zeros((height, width), dtype=torch.uint8, device=self.device)
        for _ in range(runs):
            self._infer(raw)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if self._smoother is not None:
            self._smoother.reset()  # the dummy frame is no scene to smooth towards
        self._warmed.add((height, width))

    def start_input(self, sequence: bool) -> None:
        """A new input begins: smoothing forgets the last one, and with ``temporal.enabled: auto``
        it is on for a ``sequence`` (a video, a camera) and off for independent images."""
        if self.config.temporal.enabled == "auto":
            self._smoother = self._new_smoother() if sequence else None
        elif self._smoother is not None:
            self._smoother.reset()

    def _new_smoother(self) -> TemporalSmoother:
        return TemporalSmoother(self.config.temporal)

    @property
    def smoothing(self) -> bool:
        """Whether frames are smoothed across time now."""
        return self._smoother is not None

    def colorize(self, frame: Frame) -> Frame:
        """Set ``frame.rgb`` (``H×W×3`` uint8 RGB) and stamps it :attr:`Stage.COLORIZED`; returns the frame."""
        return next(self.run([frame]))

    def run(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Colorize a stream lazily, in order: each frame comes back with ``rgb`` and its timing set."""
        if self.device.type == "cuda":
            yield from self._run_cuda(frames)
            return
        for frame in frames:
            self._maybe_warmup(frame.nir)
            frame.rgb = self._infer(torch.from_numpy(_checked(frame.nir))).numpy()
            frame.stamp(Stage.COLORIZED)
            yield frame

    def _run_cuda(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        copy_in = torch.cuda.Stream(self.device)
        copy_out = torch.cuda.Stream(self.device)
        pending: tuple[Frame, Tensor, torch.cuda.Event] | None = None
        for frame in frames:
            submitted = self._submit(frame, copy_in, copy_out)
            if pending is not None:
                yield _finish(*pending)
            pending = submitted
        if pending is not None:
            yield _finish(*pending)

    def _submit(
        self, frame: Frame, copy_in: torch.cuda.Stream, copy_out: torch.cuda.Stream
    ) -> tuple[Frame, Tensor, torch.cuda.Event]:
        """Queue copy in, compute and copy out of one frame without waiting for any of it."""
        nir = _checked(frame.nir)
        self._maybe_warmup(nir)
        host_in, host_out = self._host_buffers(nir)
        host_in.numpy()[...] = nir
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(copy_in):
            raw = host_in.to(self.device, non_blocking=True)
            copied_in = torch.cuda.Event()
            copied_in.record(copy_in)
        compute.wait_event(copied_in)
        raw.record_stream(compute)  # freed by the allocator only after compute has read it
        rgb = self._infer(raw, host_in)
        computed = torch.cuda.Event()
        computed.record(compute)
        copy_out.wait_event(computed)
        with torch.cuda.stream(copy_out):
            host_out.copy_(rgb, non_blocking=True)
            copied_out = torch.cuda.Event()
            copied_out.record(copy_out)
        rgb.record_stream(copy_out)
        return frame, host_out, copied_out

    def _host_buffers(self, nir: np.ndarray) -> tuple[Tensor, Tensor]:
        """Pinned input and output buffers for this shape, two pairs used in turn.

        Two frames are in flight at most, and a pair is reused only after the result that
        last used it was waited for (which implies its copy in and compute finished too).
        """
        dtype = torch.uint8 if nir.dtype == np.uint8 else torch.uint16
        key = (nir.shape, dtype)
        if key not in self._pinned:
            height, width = nir.shape
            self._pinned[key] = [
                (
                    torch.empty((height, width), dtype=dtype, pin_memory=True),
                    torch.empty((height, width, 3), dtype=torch.uint8, pin_memory=True),
                )
                for _ in range(2)
            ]
        self._slot ^= 1
        return self._pinned[key][self._slot]

    def _maybe_warmup(self, nir: np.ndarray) -> None:
        if self.config.warmup and nir.shape[:2] not in self._warmed:
            self.warmup(*nir.shape[:2])

    def _make_net(self) -> Callable[[Tensor], Tensor]:
        return make_backend(
            self.model, self.config.backend, self.precision, self.device,
            engine_cache=None if self.config.engine_cache is None else Path(self.config.engine_cache),
        )

    def _autotune(self, height: int, width: int) -> None:
        """Settle ``tile_batch: auto`` (CUDA) and ``precision: auto`` (CUDA, CPUs with bf16), measured on a frame of this size (once)."""
        if not (self._tune_batch or self._net is None):
            return
        tiles = self.tiles_per_frame(height, width)
        if self._tune_batch:
            self._tune_batch = False
            if tiles > 1:
                tile = torch.zeros((1, 1, self.config.tile_size, self.config.tile_size), device=self.device)
                dtype = HALF_DTYPES.get(self.precision) if self.precision != "auto" else torch.float16
                self._tiler.tile_batch = largest_fitting_batch(
                    lambda n: self._eager(tile.expand(n, -1, -1, -1), dtype), most=tiles
                )
                logger.info(f"tile batch: {self._tiler.tile_batch} ({tiles} tiles per {width}x{height} frame)")
        if self._net is None:
            if self.device.type == "cuda":
                candidates = ("fp16", "bf16") if torch.cuda.is_bf16_supported() else ("fp16",)
            else:
                candidates = ("bf16",)
            sample = torch.from_numpy(synthetic_nir(height, width)).to(self.device)
            x = self._scaled(normalize(sample, self.config.levels))

            def run(precision: str) -> Tensor:
                out = self._eager(x, HALF_DTYPES.get(precision), whole=tiles == 1)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                return out

            self.precision, trials = choose_half_precision(run, candidates)
            scores = ", ".join(f"{t.precision} {t.ms:.1f} ms" + ("" if t.precision == "fp32" else f" at {t.psnr_db:.1f} dB from fp32")
                               for t in trials)
            logger.info(f"precision: {self.precision} (measured at {width}x{height}: {scores})")
            self._net = self._make_net()

    def _eager(self, x: Tensor, dtype: torch.dtype | None, whole: bool = True) -> Tensor:
        """The model itself (no compiled backend) under autocast ``dtype``, whole or tiled."""
        with torch.inference_mode(), self._autocast(dtype):
            if whole:
                return self.model(x)
            return self._tiler(self.model, x, self._phase(*x.shape[-2:]))

    def tiles_per_frame(self, height: int, width: int) -> int:
        """Tiles the model runs on for a ``height×width`` frame: 1 when the frame runs whole."""
        size = scaled_size(height, width, self.config.fast_scale)
        if not self.tile_choice(*size).tile:
            return 1
        return len(self._tiler.plan(*size, self.device, self._phase(*size)).boxes)

    def tile_choice(self, height: int, width: int) -> TileChoice:
        """Whether the model runs a ``height×width`` input whole or tiled, and why (logged once per size)."""
        key = (height, width)
        if key not in self._tile_choices:
            tile = self.config.tile
            if tile == "auto":
                if self.device.type == "cpu" and max(height, width) > AUTO_TILE and not self._measured:
                    self._bytes_per_pixel, self._measured = measure_bytes_per_pixel(self.model), True
                choice = choose_tile(
                    height, width, device_type=self.device.type, tile=AUTO_TILE, bytes_per_pixel=self._bytes_per_pixel,
                    budget_bytes=budget_bytes(self.config.memory_budget_gb),
                )
                logger.info(f"engine.tile auto at {width}x{height}: {choice.reason}")
            else:
                tiled = tile if tile and max(height, width) > tile else 0
                choice = TileChoice(tiled, f"engine.tile = {tile}")
            self._tile_choices[key] = choice
        return self._tile_choices[key]

    def _autocast(self, dtype: torch.dtype | None) -> AbstractContextManager:
        return torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext()

    def _scaled(self, full: Tensor) -> Tensor:
        """What the model sees: the normalised frame, scaled down in fast mode."""
        return full if self.config.fast_scale == 1.0 else downscale(full, self.config.fast_scale)

    def _infer(self, raw: Tensor, host_raw: Tensor | None = None) -> Tensor:
        """Raw ``H×W`` integer frame on the device to ``H×W×3`` uint8 RGB on the device;
        ``host_raw``: the same frame in host memory, for the smoother's optical flow (CUDA)."""
        if self._net is None or self._tune_batch:  # auto settings, first frame without a warmup
            self._autotune(*raw.shape)
        # The TensorRT backend casts the model itself; autocast is for PyTorch execution.
        dtype = HALF_DTYPES.get(self.precision) if self.config.backend != "tensorrt" else None
        with torch.inference_mode():
            full = normalize(raw, self.config.levels)
            x = self._scaled(full)
            with self._autocast(dtype):
                if self.tile_choice(*x.shape[-2:]).tile:
                    rgb = self._tiler(self._forward, x, self._phase(*x.shape[-2:]))
                else:  # a frame within one tile runs whole: the same result, without padding work
                    rgb = self._forward(x)
            if x is not full:
                rgb = guided_upsample(rgb.float(), x, full)
            if self._smoother is not None:
                host_nir = None if host_raw is None else normalize(host_raw, self.config.levels)
                rgb = self._smoother(rgb.float(), full, host_nir)
            return rgb[0].float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0).contiguous()

    def _phase(self, height: int, width: int) -> tuple[int, int]:
        """Where to place the frame on the tile canvas so tiles see the model's stride pattern as the whole frame does.

        ColorMamba and the LAB models pad (reflect) by a size-dependent margin, and strided stages are not
        shift-invariant: a tile padded differently from the frame would colour every pixel
        differently (about 10/255 on average for a random tiny model).
        """
        if self._align == 1:
            return (0, 0)
        tile = self.config.tile_size
        whole, tiled = self.model.pad_offset(height, width), self.model.pad_offset(tile, tile)
        return ((whole[0] - tiled[0]) % self._align, (whole[1] - tiled[1]) % self._align)

    def _forward(self, x: Tensor) -> Tensor:
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._net(x)


def _finish(frame: Frame, host_out: Tensor, copied_out: torch.cuda.Event) -> Frame:
    """Wait for one frame's result (the loop's only host synchronisation) and hand it on."""
    copied_out.synchronize()
    frame.rgb = host_out.numpy().copy()  # the pinned buffer is reused two frames later
    frame.stamp(Stage.COLORIZED)
    return frame


def synthetic_nir(height: int, width: int) -> np.ndarray:
    """A deterministic scene-like 8-bit NIR frame (gradients, edges, texture) for tuning before real frames."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    scene = 0.5 + 0.25 * np.sin(x / 23.0) * np.cos(y / 31.0) + 0.2 * (y / max(height - 1, 1) - 0.5)
    scene += 0.3 * ((x // 64 + y // 48) % 2) - 0.15 + 0.05 * rng.standard_normal((height, width), dtype=np.float32)
    return (np.clip(scene, 0.0, 1.0) * 255).astype(np.uint8)


def _checked(nir: np.ndarray) -> np.ndarray:
    if nir.ndim != 2 or nir.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"Frame.nir must be an H×W uint8 or uint16 array, got {nir.dtype} {nir.shape}")
    return np.ascontiguousarray(nir)


def busy_cpu_advice(config: ColorizerConfig) -> str | None:
    """What to say when other processes already keep the CPU busy: torch's threads then wait for
    each other (its parallel regions run at the pace of the slowest core). None when the load
    leaves torch's threads their cores, on a GPU, or when ``threads`` was chosen."""
    if config.threads > 0 or resolve_device(config.device).type != "cpu":
        return None
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    cores, threads = os.cpu_count() or 1, torch.get_num_threads()
    free = cores - load
    if threads <= 1 or free >= threads - 0.5:
        return None
    suggest = max(1, round(free))
    return (f"the CPU is busy (load {load:.1f} on {cores} cores) and torch runs the model on {threads} threads, "
            f"which then wait for each other: --set engine.threads={suggest} may run faster")
