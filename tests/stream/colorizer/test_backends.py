"""Compiled backends, fixed tile batches, auto-tuning, FLOP counting and the engine cache."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import TINY_COLORMAMBA

from nirstream.core.errors import ConfigError
from nirstream.core.models import build_model
from nirstream.core.models.cost import SCAN_FLOPS_PER_UPDATE, forward_flops
from nirstream.stream.colorizer import Colorizer, ColorizerConfig, Tiler
from nirstream.stream.colorizer.autotune import MIN_PSNR_DB, choose_half_precision, largest_fitting_batch
from nirstream.stream.colorizer.backends import default_engine_cache, engine_key, weights_hash
from nirstream.stream.colorizer.colorizer import CPU_TILE_BATCH, synthetic_nir


@pytest.fixture
def tiny_model():
    return build_model(dict(TINY_COLORMAMBA)).eval()


def test_fixed_batch_tiler_feeds_one_shape_and_blends_the_same():
    x = torch.rand(1, 1, 200, 300)
    shapes = []

    def model(tiles):
        shapes.append(tuple(tiles.shape))
        return tiles.repeat(1, 3, 1, 1) * 0.5

    plain = Tiler(96, 16, tile_batch=4)(model, x)
    shapes.clear()
    fixed = Tiler(96, 16, tile_batch=4, fixed_batch=True)(model, x)
    assert len(shapes) > 1 and set(shapes) == {(4, 1, 96, 96)}  # the short last batch was filled up
    assert torch.equal(fixed, plain)


def test_largest_fitting_batch_stops_at_the_first_out_of_memory():
    tried = []

    def run(n):
        tried.append(n)
        if n > 5:
            raise torch.OutOfMemoryError("CUDA out of memory")

    assert largest_fitting_batch(run, most=12) == 4
    assert tried == [1, 2, 4, 8]
    tried.clear()
    assert largest_fitting_batch(run, most=3) == 3 and tried == [1, 2, 3]  # never more than a frame's tiles
    with pytest.raises(ConfigError, match="smaller engine.tile"):
        largest_fitting_batch(lambda n: run(n + 10), most=4)


def _fake_run(outputs, times):
    def run(precision):
        if precision in times:
            times[precision][0] += 1  # count calls, to check each candidate is timed
        return outputs[precision]
    return run


@pytest.mark.parametrize("faster", ["fp16", "bf16"])
def test_half_precision_choice_prefers_the_faster_accurate_type(monkeypatch, faster):
    reference = torch.rand(1, 3, 32, 32)
    close = reference + 0.0004  # rounds to the same 8-bit levels: PSNR at the cap
    clock = [0.0]  # a fake clock that each run moves on by its precision's duration
    monkeypatch.setattr("nirstream.stream.colorizer.autotune.time.perf_counter", lambda: clock[0])
    seconds = {"fp32": 9.0, "fp16": 5.0, "bf16": 5.0, faster: 2.0}
    counts = {"fp16": [0], "bf16": [0]}
    timed = _fake_run({"fp32": reference, "fp16": close, "bf16": close}, counts)

    def run(precision):
        clock[0] += seconds[precision]
        return timed(precision)

    chosen, trials = choose_half_precision(run, ("fp16", "bf16"), repeats=2)
    assert chosen == faster
    assert {t.precision: t.ms for t in trials} == {p: seconds[p] * 1e3 for p in ("fp32", "fp16", "bf16")}
    assert all(t.accurate and t.psnr_db >= MIN_PSNR_DB for t in trials)
    assert counts == {"fp16": [3], "bf16": [3]}  # one output run and two timed runs each


def test_precision_is_a_function_of_the_measurements_and_fp32_wins_when_faster():
    from nirstream.stream.colorizer.autotune import PrecisionTrial, pick_precision

    fp32 = PrecisionTrial("fp32", float("inf"), 50.0)
    assert pick_precision([fp32, PrecisionTrial("bf16", 55.0, 40.0)]) == "bf16"
    assert pick_precision([fp32, PrecisionTrial("bf16", 55.0, 60.0)]) == "fp32"  # slower: a CPU without bf16 units
    assert pick_precision([fp32, PrecisionTrial("bf16", 55.0, 48.0)]) == "fp32"  # within 10 %: not worth a flip
    assert pick_precision([fp32, PrecisionTrial("bf16", 30.0, 10.0)]) == "fp32"  # fast but inaccurate
    assert pick_precision([fp32, PrecisionTrial("fp16", float("nan"), 1.0)]) == "fp32"  # overflow


def test_half_precision_choice_avoids_overflow_and_keeps_fp32_when_both_fail(monkeypatch):
    reference = torch.rand(1, 3, 32, 32)
    nan = torch.full_like(reference, float("nan"))  # fp16 overflow
    noisy = (reference + 0.05 * torch.randn_like(reference)).clamp(0, 1)  # far below 45 dB
    clock = [0.0]  # fp32 the slowest, so that only accuracy can keep it
    monkeypatch.setattr("nirstream.stream.colorizer.autotune.time.perf_counter", lambda: clock[0])
    fake = _fake_run({"fp32": reference, "fp16": nan, "bf16": reference}, {})

    def run(precision):
        clock[0] += {"fp32": 9.0, "fp16": 1.0, "bf16": 2.0}[precision]
        return fake(precision)

    chosen, trials = choose_half_precision(run, ("fp16", "bf16"), repeats=1)
    assert chosen == "bf16" and not {t.precision: t for t in trials}["fp16"].accurate
    chosen, _ = choose_half_precision(_fake_run({"fp32": reference, "fp16": noisy, "bf16": nan}, {}),
                                      ("fp16", "bf16"), repeats=1)
    assert chosen == "fp32"


def test_auto_settings_on_the_cpu_and_their_validation(tiny_model, monkeypatch):
    from nirstream.stream.colorizer import colorizer as colorizer_module

    monkeypatch.setattr(colorizer_module, "cpu_has_bf16", lambda: False)
    colorizer = Colorizer(tiny_model, ColorizerConfig(device="cpu", precision="auto", tile_batch="auto", tile=64,
                                                      overlap=16))
    assert colorizer.precision == "fp32"  # a CPU without bf16 units: no half type to choose
    assert colorizer.tile_batch == CPU_TILE_BATCH
    nir = synthetic_nir(100, 150)
    assert nir.dtype.name == "uint8" and nir.std() > 20  # a scene with contrast, not a flat frame
    assert colorizer.tiles_per_frame(100, 150) == 6 and colorizer.tiles_per_frame(64, 64) == 1
    with pytest.raises(ConfigError, match="tile_batch must be a number >= 1 or auto"):
        ColorizerConfig(tile_batch="most")
    with pytest.raises(ConfigError, match="tile_batch"):
        ColorizerConfig(tile_batch=0)


@pytest.mark.slow
def test_compile_backend_matches_eager_on_tiles(tiny_model):
    """Six tiles in a batch of 4 and a short batch of 2: compile records both shapes (it does not
    fill batches up, TensorRT does) and colours like eager within one 8-bit level."""
    nir = synthetic_nir(96, 150)
    frames = {}
    for backend in ("eager", "compile"):
        config = ColorizerConfig(device="cpu", backend=backend, tile=64, overlap=16, tile_batch=4)
        colorizer = Colorizer(tiny_model, config)
        assert colorizer.tiles_per_frame(96, 150) == 6 and not colorizer.fixed_batch
        frames[backend] = colorizer._infer(torch.from_numpy(nir))
    assert (frames["compile"].int() - frames["eager"].int()).abs().max() <= 1


def test_forward_flops_on_meta_match_a_real_forward(tiny_model):
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        tiny_model(torch.rand(2, 1, 64, 96))
    counted, scan = forward_flops(tiny_model, 64, 96, batch=2)
    assert counted == counter.get_total_flops() > 0
    _, one = forward_flops(tiny_model, 64, 96, batch=1)
    assert scan == 2 * one > 0 and one % SCAN_FLOPS_PER_UPDATE == 0


def test_engine_cache_key_follows_weights_shape_precision_and_device(tiny_model, monkeypatch, tmp_path):
    base = engine_key(weights_hash(tiny_model), (4, 1, 640, 640), torch.float16, "H100", "2.13")
    assert len(base) == 32 and base.isalnum()
    assert engine_key(weights_hash(tiny_model), (4, 1, 640, 640), torch.float16, "H100", "2.13") == base
    for changed in [
        ((2, 1, 640, 640), torch.float16, "H100", "2.13"),
        ((4, 1, 640, 640), torch.bfloat16, "H100", "2.13"),
        ((4, 1, 640, 640), torch.float16, "H200", "2.13"),
        ((4, 1, 640, 640), torch.float16, "H100", "2.14"),
    ]:
        assert engine_key(weights_hash(tiny_model), *changed) != base
    before = weights_hash(tiny_model)
    with torch.no_grad():
        next(tiny_model.parameters())[0].flatten()[0] += 1e-3
    assert weights_hash(tiny_model) != before  # retrained weights never load a stale engine
    assert len(weights_hash(build_model({"arch": "resnet34-lab"}))) == 64  # 0-dim BatchNorm counters hash too
    monkeypatch.setenv("NIRSTREAM_CACHE", str(tmp_path))
    assert default_engine_cache() == tmp_path / "engines"


def test_auto_precision_on_a_cpu_with_bf16_keeps_output_within_the_bound(tiny_model, monkeypatch):
    """Whichever it picks by timing, fp32 or bf16, the frame stays within MIN_PSNR_DB of fp32."""
    from nirstream.core.metrics import psnr
    from nirstream.stream.colorizer import colorizer as colorizer_module
    from nirstream.stream.frame import Frame

    monkeypatch.setattr(colorizer_module, "cpu_has_bf16", lambda: True)
    nir = synthetic_nir(96, 128)
    auto = Colorizer(tiny_model, ColorizerConfig(device="cpu", tile=0))
    out = auto.colorize(Frame(0, None, 0.0, nir)).rgb
    assert auto.precision in ("fp32", "bf16")
    reference = Colorizer(tiny_model, ColorizerConfig(device="cpu", tile=0, precision="fp32")).colorize(Frame(0, None, 0.0, nir)).rgb
    to_tensor = lambda rgb: torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    assert float(psnr(to_tensor(out), to_tensor(reference))) >= MIN_PSNR_DB


def test_int8_runs_int8_linear_layers_within_the_bound_whole_and_tiled(tiny_model):
    """precision int8 quantizes a copy's Linear layers (the caller's model keeps fp32 weights) and
    stays within MIN_PSNR_DB of fp32 on a whole frame and on tiles; a backend other than eager,
    or a model without Linear layers, is a one-line ConfigError."""
    from nirstream.core.metrics import psnr
    from nirstream.stream.frame import Frame

    nir = synthetic_nir(96, 150)
    to_tensor = lambda rgb: torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    for tiling in ({"tile": 0}, {"tile": 64, "overlap": 16}):
        int8 = Colorizer(tiny_model, ColorizerConfig(device="cpu", precision="int8", **tiling))
        assert not any(type(m) is torch.nn.Linear for m in int8.model.modules())
        assert any("quantized" in type(m).__module__ for m in int8.model.modules())
        assert any(type(m) is torch.nn.Linear for m in tiny_model.modules())
        out = int8.colorize(Frame(0, None, 0.0, nir)).rgb
        fp32 = Colorizer(tiny_model, ColorizerConfig(device="cpu", precision="fp32", **tiling))
        reference = fp32.colorize(Frame(0, None, 0.0, nir)).rgb
        assert not (out == reference).all()  # int8 arithmetic really ran
        assert float(psnr(to_tensor(out), to_tensor(reference))) >= MIN_PSNR_DB
    with pytest.raises(ConfigError, match="precision int8 runs with backend eager, not compile"):
        ColorizerConfig(precision="int8", backend="compile")
    with pytest.raises(ConfigError, match="precision int8 quantizes Linear layers, and Sequential has none"):
        Colorizer(torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1)), ColorizerConfig(device="cpu", precision="int8"))
