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


def test_tile_auto_is_a_deterministic_function_of_the_measurements():
    from nirstream.stream.colorizer.memory import choose_tile

    def choose(height, width, device="cpu", bpp=200.0, budget=1e9):
        return choose_tile(height, width, device_type=device, tile=640, bytes_per_pixel=bpp, budget_bytes=budget)

    assert choose(720, 1280).tile == 0 and "of the 954 MB memory budget (200 B/pixel measured)" in choose(720, 1280).reason
    assert choose(720, 1280, budget=1e8).tile == 640  # 184 MB needed
    assert choose(512, 640, budget=1.0).tile == 0  # one tile's worth runs whole whatever the budget
    assert choose(720, 1280, bpp=None).tile == 640  # nothing measured: tiles, as before
    assert choose(720, 1280, device="cuda").tile == 640  # fixed shapes for the compiled backends


def test_tile_auto_runs_whole_frames_on_the_cpu_within_the_budget_and_tiles_above_it(tiny_model, monkeypatch):
    from nirstream.stream.colorizer import colorizer as colorizer_module

    monkeypatch.setattr(colorizer_module, "AUTO_TILE", 64)  # a tiny model's frames: 96x80 is "large"
    monkeypatch.setattr(colorizer_module, "measure_bytes_per_pixel", lambda model: 1000.0)
    nir = (np.indices((80, 96)).sum(axis=0) % 256).astype(np.uint8)
    whole = Colorizer(tiny_model, ColorizerConfig(device="cpu", overlap=16, memory_budget_gb=1.0))
    tiled = Colorizer(tiny_model, ColorizerConfig(device="cpu", overlap=16, memory_budget_gb=1e-6))
    assert whole.tile_choice(80, 96).tile == 0 and whole.tiles_per_frame(80, 96) == 1
    assert tiled.tile_choice(80, 96).tile == 64 and tiled.tiles_per_frame(80, 96) > 1
    reference = Colorizer(tiny_model, ColorizerConfig(device="cpu", tile=0)).colorize(_frame(0, nir)).rgb
    np.testing.assert_array_equal(whole.colorize(_frame(0, nir)).rgb, reference)
    difference = np.abs(tiled.colorize(_frame(0, nir)).rgb.astype(int) - reference).mean()
    assert difference <= 2.0  # tiles blend to the whole frame's colours (the seam test bounds them closely)


def test_the_memory_of_a_whole_frame_is_measured_where_linux_allows(tiny_model):
    from nirstream.stream.colorizer.memory import measure_bytes_per_pixel

    class Wide(torch.nn.Module):
        """Holds 100 float32 channels per pixel at once: 400 bytes a pixel, 800 with the product."""

        def forward(self, x):
            wide = x.expand(-1, 100, -1, -1).contiguous()
            return (wide * 2.0).sum(dim=1, keepdim=True)

    measured = measure_bytes_per_pixel(Wide(), probe=(256, 320))
    if measured is None:
        pytest.skip("no /proc/self/status or glibc here")
    assert 400 <= measured <= 2000, measured  # what the model held per pixel, not the process's size
    assert measure_bytes_per_pixel(tiny_model, probe=(256, 320)) < measured  # the tiny model holds far less


def test_smoothing_auto_is_on_for_videos_and_off_for_image_folders(tiny_model):
    from nirstream.stream.colorizer import TemporalConfig

    auto = Colorizer(tiny_model, ColorizerConfig(device="cpu", warmup=False))
    auto.start_input(sequence=True)
    assert auto.smoothing
    auto.start_input(sequence=False)
    assert not auto.smoothing
    never = Colorizer(tiny_model, ColorizerConfig(device="cpu", temporal=TemporalConfig(enabled=False)))
    never.start_input(sequence=True)
    assert not never.smoothing
    with pytest.raises(ConfigError, match="temporal.enabled"):
        ColorizerConfig(temporal=TemporalConfig(enabled="sometimes"))


def test_a_busy_cpu_is_named_with_the_thread_count_that_fits(monkeypatch):
    import os

    import torch

    from nirstream.stream.colorizer.colorizer import busy_cpu_advice

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
        monkeypatch.setattr(os, "getloadavg", lambda: (1.1, 1.0, 1.0))  # another process on one core
        advice = busy_cpu_advice(ColorizerConfig(device="cpu"))
        assert advice is not None and "load 1.1 on 2 cores" in advice and "engine.threads=1" in advice
        monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))  # idle: nothing to say
        assert busy_cpu_advice(ColorizerConfig(device="cpu")) is None
        monkeypatch.setattr(os, "getloadavg", lambda: (1.1, 1.0, 1.0))
        assert busy_cpu_advice(ColorizerConfig(device="cpu", threads=1)) is None  # chosen: said nothing
        Colorizer(torch.nn.Identity(), ColorizerConfig(device="cpu", threads=1, warmup=False))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
