"""``nirstream bench`` and ``nirstream export``: the numbers they report and the files they write."""

import importlib.util
import json

import pytest
import torch

from conftest import TINY_COLORMAMBA

from nirstream.core.models import build_model
from nirstream.core.models.cost import forward_flops
from nirstream.core.weights import save_weights
from nirstream.stream.bench import bench_one, frame_flops, measure_peak_tflops
from nirstream.stream.cli import main
from nirstream.stream.colorizer import Colorizer, ColorizerConfig

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    return save_weights(build_model(dict(TINY_COLORMAMBA)), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def test_frame_flops_count_every_tile_and_the_filled_up_batches(monkeypatch):
    model = build_model(dict(TINY_COLORMAMBA)).eval()
    per_tile = sum(forward_flops(model, 64, 64))
    whole = Colorizer(model, ColorizerConfig(device="cpu", tile=0))
    assert frame_flops(whole, 150, 100) == sum(forward_flops(model, 100, 150))
    eager = Colorizer(model, ColorizerConfig(device="cpu", tile=64, overlap=16, tile_batch=4))
    assert eager.tiles_per_frame(100, 150) == 6
    assert frame_flops(eager, 150, 100) == 6 * per_tile
    compiled = Colorizer(model, ColorizerConfig(device="cpu", tile=64, overlap=16, tile_batch=4, backend="compile"))
    assert not compiled.fixed_batch and frame_flops(compiled, 150, 100) == 6 * per_tile
    # as for TensorRT, which cannot be built here: the colorizer says it runs full batches only
    monkeypatch.setattr(Colorizer, "fixed_batch", property(lambda self: True))
    assert frame_flops(compiled, 150, 100) == 8 * per_tile  # two calls of 4: the second filled up


def test_bench_one_reports_the_floor_of_a_model_whose_flops_are_known(monkeypatch):
    """A 1x1 convolution from 1 to 3 channels: 2 x 3 FLOPs a pixel (a multiply and an add per
    output), 36 864 for 96x64; at a pretended 1 GFLOP/s its floor is 0.036864 ms."""
    from nirstream.stream import bench

    monkeypatch.setattr(bench, "measure_peak_tflops", lambda device, precision: 1e-3)
    model = torch.nn.Conv2d(1, 3, 1).eval()
    result = bench_one(model, "conv", ColorizerConfig(device="cpu"), 96, 64, frames=6)
    assert result.frames == 6 and result.device == "cpu" and result.gpu_memory_mib is None
    assert result.fps > 0 and 0 < result.latency_p50_ms <= result.latency_p99_ms
    assert result.gflops_per_frame == pytest.approx(36_864e-9)
    assert result.floor_ms == pytest.approx(0.036864)
    assert result.fraction_of_peak == pytest.approx(result.fps * 36_864 / 1e9)  # FLOPs per second over the peak
    assert measure_peak_tflops(torch.device("cpu"), "fp32", seconds=0.05) > 0.001  # more than 1 GFLOP/s


def test_bench_command_writes_json_and_chart(tiny_weights, tmp_path):
    out = tmp_path / "bench"
    code = main(["bench", "--model", str(tiny_weights), "--device", "cpu", "--size", "96x64", "--size", "80x48",
                 "--precision", "fp32", "--precision", "bf16", "--frames", "3", "--out", str(out)])
    assert code == 0
    rows = json.loads((out / "bench.json").read_text())
    assert [(r["precision"], r["width"], r["height"]) for r in rows] == [
        ("fp32", 96, 64), ("fp32", 80, 48), ("bf16", 96, 64), ("bf16", 80, 48)]
    assert all(r["model"] == "tiny" and r["frames"] == 3 for r in rows)
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_and_export_reject_bad_arguments(tiny_weights, capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--size", "640by512"])
    assert "size must look like 640x512" in capsys.readouterr().err
    if not torch.cuda.is_available():
        code = main(["export", "--weights", str(tiny_weights), "--format", "tensorrt", "--out", "x.ep"])
        assert code == 2
        assert capsys.readouterr().err.strip().count("\n") == 0  # one line, no traceback
    code = main(["export", "--weights", str(tiny_weights), "--format", "onnx", "--out", "x.onnx",
                 "--precision", "fp16"])
    assert code == 2 and "ONNX export is fp32" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime (pip install 'nirstream[export]')")
def test_onnx_export_matches_pytorch_on_demo_frames(tiny_weights, tmp_path, capsys):
    import onnx

    out = tmp_path / "tiny.onnx"
    code = main(["export", "--weights", str(tiny_weights), "--format", "onnx", "--out", str(out),
                 "--size", "96x64", "--batch", "2"])
    assert code == 0
    model = onnx.load(str(out))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 1, 64, 96]
    assert {p.key: p.value for p in model.metadata_props}["nirstream.input"] == "2x1x64x96"
    import onnxruntime

    from nirstream.core.weights import load_model

    nir = torch.rand(2, 1, 64, 96)
    (onnx_rgb,) = onnxruntime.InferenceSession(str(out)).run(None, {model.graph.input[0].name: nir.numpy()})
    with torch.inference_mode():
        torch_rgb = load_model(tiny_weights)(nir).numpy()
    assert onnx_rgb.shape == (2, 3, 64, 96)
    assert abs(onnx_rgb - torch_rgb).max() < 1e-4  # the file computes what the model does


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime (pip install 'nirstream[export]')")
def test_onnx_export_carries_the_semantic_prior(tmp_path):
    """The ImageNet encoder's TensorFlow-style padding and the projections export and compute
    in onnxruntime what they compute in torch."""
    import onnx
    import onnxruntime

    from nirstream.core.weights import load_model

    torch.manual_seed(0)
    model = build_model({**TINY_COLORMAMBA, "encoder": "efficientnet-lite0"})
    for projection in [*model.semantic.to_a, *model.semantic.to_b]:
        torch.nn.init.normal_(projection[-1].weight, std=0.3)  # as trained: not zero
    weights = save_weights(model, tmp_path / "prior.safetensors")
    out = tmp_path / "prior.onnx"
    assert main(["export", "--weights", str(weights), "--format", "onnx", "--out", str(out), "--size", "96x64", "--no-check"]) == 0
    nir = torch.rand(1, 1, 64, 96)
    (onnx_rgb,) = onnxruntime.InferenceSession(str(out)).run(None, {onnx.load(str(out)).graph.input[0].name: nir.numpy()})
    with torch.inference_mode():
        torch_rgb = load_model(weights)(nir).numpy()
    assert abs(onnx_rgb - torch_rgb).max() < 1e-4


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime")
def test_onnx_export_that_fails_its_check_leaves_no_file(tiny_weights, tmp_path, monkeypatch, capsys):
    from nirstream.stream import export as export_module

    out = tmp_path / "tiny.onnx"
    out.write_bytes(b"an earlier export")
    monkeypatch.setattr(export_module, "onnx_mean_abs_diff", lambda *args: 0.5)
    code = main(["export", "--weights", str(tiny_weights), "--format", "onnx", "--out", str(out), "--size", "96x64"])
    assert code != 0 and "differs from PyTorch by 5.00e-01" in capsys.readouterr().err
    assert out.read_bytes() == b"an earlier export"  # not replaced by the file that failed
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.onnx"]  # no .unchecked file left either


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime")
def test_onnx_check_catches_a_model_that_differs(tmp_path):
    from nirstream.core.onnx_export import export_onnx, onnx_mean_abs_diff

    lab = build_model({"arch": "resnet34-lab"}).eval()  # the Lab conversion exports too
    lab_path = export_onnx(lab, tmp_path / "lab.onnx", 32, 48)
    assert onnx_mean_abs_diff(lab, lab_path, [torch.rand(1, 1, 32, 48)]) < 1e-5
    model = build_model(dict(TINY_COLORMAMBA)).eval()
    path = export_onnx(model, tmp_path / "m.onnx", 32, 48)
    images = [torch.rand(1, 1, 32, 48) for _ in range(2)]
    assert onnx_mean_abs_diff(model, path, images) < 1e-5
    other = build_model(dict(TINY_COLORMAMBA)).eval()  # different random weights
    assert onnx_mean_abs_diff(other, path, images) > 1e-3
    with pytest.raises(ValueError, match="the ONNX model takes"):
        onnx_mean_abs_diff(model, path, [torch.rand(1, 1, 48, 32)])


def test_bench_skips_a_combination_that_cannot_run_and_measures_the_others(tiny_weights, tmp_path):
    out = tmp_path / "bench"
    assert main(["bench", "--model", str(tiny_weights), "--backend", "compile", "--backend", "eager",
                 "--precision", "int8", "--size", "64x48", "--frames", "2", "--out", str(out)]) == 0
    rows = json.loads((out / "bench.json").read_text())
    assert [(r["backend"], r["precision"]) for r in rows] == [("eager", "int8")]  # compile with int8 cannot run
