"""The Colorizer's frame interface: uint8 RGB of the frame size, lazy and ordered, bad settings refused."""


import importlib.util
import time

import numpy as np
import pytest
import torch
from conftest import TINY_COLORMAMBA

from nirstream.core.errors import ConfigError
from nirstream.core.models import build_model
from nirstream.stream.colorizer import Colorizer, ColorizerConfig, Levels
from nirstream.stream.frame import Frame
from nirstream.stream.stats import Stage

CPU = torch.device("cpu")


def _frame(index, nir):
    return Frame(index=index, pts=index / 30, captured_at=time.monotonic(), nir=nir)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(TINY_COLORMAMBA).eval()


@pytest.mark.parametrize("dtype,levels", [(np.uint8, Levels()), (np.uint16, Levels(mode="auto"))])
@pytest.mark.parametrize("tile", [0, 64])
def test_colorize_returns_uint8_rgb_of_the_frame_size(tiny_model, dtype, levels, tile):
    config = ColorizerConfig(device="cpu", tile=tile, overlap=16, levels=levels)
    nir = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, (61, 97)).astype(dtype)
    frame = Colorizer(tiny_model, config).colorize(_frame(0, nir))
    assert frame.rgb.shape == (61, 97, 3) and frame.rgb.dtype == np.uint8
    assert frame.time_of(Stage.COLORIZED) >= frame.captured_at and frame.rgb.std() > 0


def test_run_is_lazy_and_in_order(tiny_model):
    colorizer = Colorizer(tiny_model, ColorizerConfig(device="cpu", tile=0, precision="bf16"))
    pulled = []

    def frames():
        for i in range(4):
            pulled.append(i)
            yield _frame(i, np.full((40, 50), 10 * i, dtype=np.uint8))

    stream = colorizer.run(frames())
    first = next(stream)
    assert first.index == 0 and pulled == [0]
    assert [f.index for f in stream] == [1, 2, 3]


def test_config_errors():
    with pytest.raises(ConfigError, match="backend"):
        ColorizerConfig(backend="onnx")
    with pytest.raises(ConfigError, match="overlap"):
        ColorizerConfig(tile=64, overlap=40)


@pytest.mark.skipif(importlib.util.find_spec("torch_tensorrt") is not None, reason="torch-tensorrt is installed")
def test_tensorrt_backend_without_the_package_is_a_config_error(tiny_model):
    with pytest.raises(ConfigError, match=r"pip install 'nirstream\[tensorrt\]'"):
        Colorizer(tiny_model, ColorizerConfig(device="cpu", backend="tensorrt"))


@pytest.mark.slow
def test_compile_backend_on_cpu_matches_eager(tiny_model):
    nir = np.random.default_rng(1).integers(0, 255, (64, 64)).astype(np.uint8)
    eager = Colorizer(tiny_model, ColorizerConfig(device="cpu", tile=0)).colorize(_frame(0, nir))
    compiled = Colorizer(tiny_model, ColorizerConfig(device="cpu", tile=0, backend="compile")).colorize(_frame(0, nir))
    assert np.abs(compiled.rgb.astype(int) - eager.rgb.astype(int)).max() <= 1
