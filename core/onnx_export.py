"""ONNX export of a colorization model, checked against PyTorch with onnxruntime.

The selective scan exports through its chunked backend: plain tensor ops (exp, cumsum,
multiply-add, sum), which every ONNX runtime has. The input size is fixed at export: the
model's padding and the scan's chunking follow from it, so export one file per camera
resolution (or per tile size, for tiled inference).
"""

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nirstream.core.errors import ConfigError
from nirstream.core.files import atomic_path
from nirstream.core.models.ss2d import use_scan_backend

ONNX_MISSING = "ONNX export needs onnx, onnxscript and onnxruntime (pip install 'nirstream[export]')"
MAX_MEAN_ABS_DIFF = 1e-3
"""The largest mean |ONNX - PyTorch| (RGB in [0, 1]) a checked export may have."""


def export_onnx(model: nn.Module, path: str | Path, height: int, width: int, batch: int = 1) -> Path:
    """Write ``model`` (NIR ``batch×1×height×width`` in [0, 1] to RGB) as an ONNX file at ``path``."""
    try:
        import onnx  # noqa: F401  (the exporter needs both)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ConfigError(ONNX_MISSING) from exc
    model = model.eval().cpu()
    example = torch.rand(batch, 1, height, width)
    # The exporter prints its progress and warns about torchvision ops this model does not use;
    # a command line wants one line of its own instead.
    with use_scan_backend(model, "chunked"), torch.no_grad(), _quiet():
        program = torch.onnx.export(
            model, (example,), dynamo=True, input_names=["nir"], output_names=["rgb"], verbose=False
        )
    config = getattr(model, "config", None) or {}
    program.model.metadata_props.update(
        {"nirstream.arch": str(config.get("arch", type(model).__name__)), "nirstream.input": f"{batch}x1x{height}x{width}"}
    )
    with atomic_path(path) as tmp:
        program.save(str(tmp))
    return Path(path)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        exporter_log.setLevel(level)


def onnx_mean_abs_diff(model: nn.Module, path: str | Path, images: list[Tensor]) -> float:
    """Mean |ONNX - PyTorch| over ``images`` (each ``1×1×H×W`` at the exported size), with onnxruntime on the CPU."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(ONNX_MISSING) from exc
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = tuple(session.get_inputs()[0].shape)
    diffs = []
    model = model.eval().cpu()
    for image in images:
        if tuple(image.shape) != expected:
            raise ValueError(f"check image has shape {tuple(image.shape)}, the ONNX model takes {expected}")
        with torch.inference_mode():
            reference = model(image).numpy()
        (output,) = session.run(None, {"nir": image.numpy().astype(np.float32)})
        diffs.append(float(np.abs(output - reference).mean()))
    return float(np.mean(diffs))
