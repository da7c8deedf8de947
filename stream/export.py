"""``nirstream export``: a model as an ONNX file (checked with onnxruntime) or a TensorRT program.

ONNX files are checked against PyTorch on real NIR frames (the bundled demo clip unless told
otherwise), scaled to the exported size: the export fails if the mean absolute difference
exceeds :data:`~nirstream.core.onnx_export.MAX_MEAN_ABS_DIFF`. TensorRT programs are built
with the same code as the colorizer's ``tensorrt`` backend and load with
``torch_tensorrt.load(path).module()``.
"""

from pathlib import Path

import cv2
import numpy as np
import torch
from loguru import logger
from torch import Tensor, nn

from nirstream.core.device import resolve_device
from nirstream.core.errors import ConfigError
from nirstream.core.onnx_export import MAX_MEAN_ABS_DIFF, export_onnx, onnx_mean_abs_diff
from nirstream.stream.colorizer import Levels, normalize
from nirstream.stream.colorizer.backends import TensorRTEngines, default_engine_cache
from nirstream.stream.sources import open_source

FORMATS = ("onnx", "tensorrt")
CHECK_FRAMES = 4


def export(
    model: nn.Module,
    fmt: str,
    out: Path,
    width: int,
    height: int,
    *,
    batch: int = 1,
    precision: str = "fp32",
    check_source: str | None = None,
) -> Path:
    """Export ``model`` for ``batch×1×height×width`` input; ONNX is checked on ``check_source`` unless it is None."""
    if fmt == "onnx":
        if precision != "fp32":
            raise ConfigError("ONNX export is fp32 (runtimes choose their own precision); drop --precision")
        logger.info(f"exporting to ONNX at {batch}x1x{height}x{width} (a minute or more for large models)")
        unchecked = out.with_name(out.name + ".unchecked")  # a file that failed its check never lands at ``out``
        try:
            export_onnx(model, unchecked, height, width, batch)
            if check_source is not None:
                frames = check_frames(check_source, width, height)
                diff = onnx_mean_abs_diff(model, unchecked, [f.expand(batch, -1, -1, -1).contiguous() for f in frames])
                if not diff <= MAX_MEAN_ABS_DIFF:
                    raise ConfigError(
                        f"ONNX output differs from PyTorch by {diff:.2e} on average (limit {MAX_MEAN_ABS_DIFF:g})"
                    )
                logger.info(f"onnxruntime matches PyTorch on {len(frames)} real frames: mean |difference| {diff:.2e}")
            unchecked.replace(out)
        finally:
            unchecked.unlink(missing_ok=True)
        return out
    if fmt == "tensorrt":
        if not torch.cuda.is_available():
            raise ConfigError("TensorRT export needs a CUDA GPU and torch-tensorrt; this machine has no GPU")
        device = resolve_device("cuda")
        engines = TensorRTEngines(model.to(device), precision, device, default_engine_cache())
        example = torch.rand(batch, 1, height, width, device=device)
        return engines.save(engines.build(example), example, out)
    raise ConfigError(f"unknown export format '{fmt}'; allowed: {', '.join(FORMATS)}")


def check_frames(source: str, width: int, height: int, count: int = CHECK_FRAMES) -> list[Tensor]:
    """``count`` frames spread over ``source``, normalised and scaled to ``width×height``: ``1×1×H×W`` tensors."""
    with open_source(source) as frames_in:
        total = frames_in.info.frame_count or count
        wanted = {round(i * (total - 1) / max(count - 1, 1)) for i in range(count)}
        picked = []
        for frame in frames_in:
            if frame.index in wanted:
                picked.append(frame.nir)
            if len(picked) == len(wanted):
                break
    if not picked:
        raise ConfigError(f"no frames to check the export with in {source}")
    tensors = []
    for nir in picked:
        image = normalize(torch.from_numpy(np.ascontiguousarray(nir)), Levels())[0, 0].numpy()
        resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        tensors.append(torch.from_numpy(resized).view(1, 1, height, width))
    return tensors
