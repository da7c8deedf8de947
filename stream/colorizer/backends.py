"""How the colorizer calls the model: ``eager``, ``compile`` (torch.compile, CUDA graphs) or ``tensorrt``.

Each backend is a callable from an ``N×1×h×w`` float tensor to ``N×3×h×w``. The compiled
backends see the selective scan as one opaque custom op (``torch.ops.nirstream.selective_scan``,
:mod:`nirstream.core.ops.scan_op`): torch.compile runs it without a graph break, and TensorRT
leaves that one op to PyTorch while it builds engines for everything around it. Both compile
one program per input shape; TensorRT's take minutes each, so the tiler feeds it full tile batches only.
"""

import copy
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from loguru import logger
from torch import Tensor, nn

from nirstream.core import __version__
from nirstream.core.errors import ConfigError
from nirstream.core.files import atomic_path
from nirstream.core.models.ss2d import use_scan_backend

TENSORRT_MISSING = "backend tensorrt needs torch-tensorrt (pip install 'nirstream[tensorrt]')"
HALF_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for ``precision: int8`` (CPU): its Linear layers hold int8 weights and
    quantize their input on each call (torch.ao dynamic quantization); convolutions and the scan
    stay fp32, and there is nothing to calibrate.

    For the shipped CPU model that is the VSS blocks' projections and feed-forward: 1.08x fp32
    at 640x512 here, 52 dB from fp32's output, VCIP val 0.01 dB below it (``benchmarks/int8.py``).
    torch.ao's quantization is deprecated in favour of torchao, which nirstream does not depend
    on; its warnings say so and are silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def default_engine_cache() -> Path:
    """Where TensorRT engines are kept: ``$NIRSTREAM_CACHE/engines``, else ``~/.cache/nirstream/engines``."""
    root = os.environ.get("NIRSTREAM_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nirstream"
    return Path(root) / "engines"


def make_backend(
    model: nn.Module, backend: str, precision: str, device: torch.device, engine_cache: Path | None = None
) -> Callable[[Tensor], Tensor]:
    """The callable that runs ``model`` (already on ``device``, in eval mode) with ``backend``."""
    if backend == "compile":
        return compiled(model, device)
    if backend == "tensorrt":
        return TensorRTEngines(model, precision, device, engine_cache or default_engine_cache())
    return model


def require_tensorrt(device: torch.device):  # noqa: ANN201 - the torch_tensorrt module
    """torch_tensorrt, or the ConfigError that says what is missing: the package, or a GPU."""
    try:
        import torch_tensorrt
    except ImportError as exc:
        raise ConfigError(TENSORRT_MISSING) from exc
    if device.type != "cuda":
        raise ConfigError("backend tensorrt needs a CUDA device; use backend eager or compile on the CPU")
    return torch_tensorrt


def compiled(model: nn.Module, device: torch.device) -> Callable[[Tensor], Tensor]:
    """torch.compile; on CUDA with CUDA graphs (``reduce-overhead``): one launch per call instead of one per kernel."""
    # Static shapes: the tiler feeds one shape per stream, and symbolic shapes of ColorMamba's
    # size-dependent padding made inductor fail at 640x512 (torch 2.13, CPU).
    program = torch.compile(model, mode="reduce-overhead" if device.type == "cuda" else None, dynamic=False)

    def step(x: Tensor) -> Tensor:
        with use_scan_backend(model, "custom_op"):  # the same for every call: traced once
            if device.type == "cuda":
                # A CUDA graph reuses its output memory: each call's output is consumed
                # (blended or converted) before the next call.
                torch.compiler.cudagraph_mark_step_begin()
            return program(x)

    return step


class TensorRTEngines:
    """TensorRT engines (torch-tensorrt, dynamo) built on first use for each input shape, cached on disk.

    fp16/bf16 come from casting the model and its inputs: from torch-tensorrt 2.13 on,
    ``enabled_precisions`` no longer picks the precision. An engine file is named by a hash
    of everything that makes it valid (weights, shape, precision, GPU, library versions), so a
    second run with the same model loads it in seconds instead of rebuilding for minutes, and a
    changed model never loads a stale engine.
    """

    def __init__(self, model: nn.Module, precision: str, device: torch.device, cache: Path) -> None:
        self._trt = require_tensorrt(device)
        self._dtype = HALF_DTYPES.get(precision, torch.float32)
        self._model = copy.deepcopy(model).to(self._dtype) if self._dtype != torch.float32 else model
        self._cache = cache
        self._weights_hash = weights_hash(self._model)
        self._engines: dict[tuple[int, ...], Callable[[Tensor], Tensor]] = {}

    def __call__(self, x: Tensor) -> Tensor:
        x = x.to(self._dtype)
        key = tuple(x.shape)
        if key not in self._engines:
            self._engines[key] = self._load_or_build(x)
        return self._engines[key](x)

    def engine_path(self, x: Tensor) -> Path:
        """The cache file for an engine taking inputs like ``x``."""
        key = engine_key(self._weights_hash, tuple(x.shape), self._dtype, torch.cuda.get_device_name(x.device),
                         self._trt.__version__)
        return self._cache / f"{key}.ep"

    def _load_or_build(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        path = self.engine_path(x)
        if path.is_file():
            try:
                engine = self._trt.load(str(path)).module()
                logger.info(f"TensorRT engine for {tuple(x.shape)} loaded from {path}")
                return engine
            except Exception as exc:  # a corrupt or incompatible cache file: rebuild it
                logger.warning(f"rebuilding the TensorRT engine: cannot load {path} ({exc})")
        engine = self.build(x)
        self.save(engine, x, path)
        logger.info(f"TensorRT engine cached at {path}")
        return engine

    def build(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        """Compile an engine for inputs like ``x`` (minutes for a large model)."""
        x = x.to(self._dtype)
        logger.info(f"building a TensorRT engine for {tuple(x.shape)} {self._dtype} (minutes, once per shape)")
        with use_scan_backend(self._model, "custom_op"):
            return self._trt.compile(self._model, ir="dynamo", inputs=[x])

    def save(self, engine: Callable[[Tensor], Tensor], x: Tensor, path: Path) -> Path:
        """Write ``engine`` as an ExportedProgram file (``torch_tensorrt.load(path).module()`` runs it)."""
        with use_scan_backend(self._model, "custom_op"), atomic_path(path) as tmp:
            self._trt.save(engine, str(tmp), inputs=[x.to(self._dtype)])
        return path


def weights_hash(model: nn.Module) -> str:
    """SHA-256 over the model's config, tensor names, dtypes and bytes."""
    digest = hashlib.sha256(json.dumps(getattr(model, "config", {}), sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def engine_key(weights: str, shape: tuple[int, ...], dtype: torch.dtype, gpu: str, trt_version: str) -> str:
    """A file-name-safe key for one engine: changes whenever any input to the build changes (nirstream's
    version included, for model code that changed under the same weights)."""
    parts = [weights, "x".join(map(str, shape)), str(dtype), gpu, trt_version, torch.__version__, __version__]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
