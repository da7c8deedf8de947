"""Post-training int8 quantization of the CPU model: speed and quality.

Two routes. The shipped CPU model is exported to ONNX (``nirstream.core.onnx_export``, the
chunked scan as plain ops), read by OpenVINO, and quantized by NNCF (``nncf.quantize``, default
symmetric int8 of weights and activations) calibrated on VCIP 2020 training NIR images. And
torch's own dynamic quantization, as ``precision: int8`` runs it
(:func:`~nirstream.stream.colorizer.backends.dynamic_int8`): int8 weights for
the Linear layers (the VSS blocks' projections and feed-forward), activations quantized per
call, so nothing to calibrate; the convolutions and the scan stay fp32. Four ways are
compared: torch eager fp32 (what ships), torch dynamic int8, OpenVINO fp32 on the same graph,
and OpenVINO int8:

- quality: PSNR / SSIM / angular error against the ground truth on VCIP val (256x256, whole
  images, the VCIP protocol), and the int8 output's PSNR against fp32's;
- speed: a 640x512 frame, each way timed in turn for several rounds (medians), the ratio to
  torch eager.

The colour-quality issue's gate for shipping int8: within 0.3 dB of fp32 on VCIP val.
Needs ``pip install openvino nncf`` (not a dependency of nirstream). Writes the ``int8`` section
of RESULTS.md. Malloc is tuned as the ``nirstream`` command tunes it.

    python benchmarks/int8.py [--calibration 120] [--rounds 7]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nirstream.core.assets import shipped_weights
from nirstream.core.data import PairedFolderDataset
from nirstream.core.metrics import image_metrics, psnr
from nirstream.core.onnx_export import export_onnx
from nirstream.core.weights import load_model
from nirstream.stream.allocator import keep_freed_memory
from nirstream.stream.colorizer.backends import dynamic_int8

from results import load, update_section

VCIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vcip2020_nir"
FRAME = (512, 640)


def openvino_models(model: torch.nn.Module, folder: Path, size: tuple[int, int], calibration: list[np.ndarray]):
    """(fp32, int8) compiled OpenVINO models of ``model`` at ``size`` (height, width)."""
    import nncf
    import openvino as ov

    onnx_path = export_onnx(model, folder / f"model-{size[0]}x{size[1]}.onnx", *size)
    core = ov.Core()
    graph = core.read_model(onnx_path)
    quantized = nncf.quantize(graph, nncf.Dataset(calibration), subset_size=len(calibration))
    config = {"INFERENCE_PRECISION_HINT": "f32"}  # fp32 arithmetic where not int8: no bf16 shortcuts
    return core.compile_model(graph, "CPU", config), core.compile_model(quantized, "CPU", config)


def calibration_frames(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """``count`` VCIP training NIR images as ``1×1×H×W`` float32, resized to ``size`` where it differs."""
    import cv2

    train = PairedFolderDataset(VCIP, "train")
    picks = np.linspace(0, len(train) - 1, count).round().astype(int)
    frames = []
    for index in picks:
        nir = train[int(index)]["nir"][0].numpy()
        if nir.shape != size:
            nir = cv2.resize(nir, size[::-1], interpolation=cv2.INTER_CUBIC)
        frames.append(nir[None, None].astype(np.float32))
    return frames


def run_ov(compiled, nir: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(compiled(nir)[0]).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibration", type=int, default=120, help="VCIP training images to calibrate on")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    keep_freed_memory()  # as the nirstream command does
    load_before = load()
    model = load_model(shipped_weights("colormamba-lite")).eval()
    val = PairedFolderDataset(VCIP, "val")
    with tempfile.TemporaryDirectory() as folder:
        fp32_256, int8_256 = openvino_models(model, Path(folder), (256, 256), calibration_frames(args.calibration, (256, 256)))
        fp32_frame, int8_frame = openvino_models(model, Path(folder), FRAME, calibration_frames(args.calibration, FRAME))
    dynamic = dynamic_int8(model)

    quality = {"torch fp32": [], "torch dynamic int8": [], "openvino fp32": [], "openvino int8": []}
    agreement = {"torch dynamic int8": [], "openvino int8": []}
    for item in val:
        nir, rgb = item["nir"][None], item["rgb"][None]
        with torch.inference_mode():
            reference = model(nir).clamp(0, 1)
            outputs = {"torch fp32": reference, "torch dynamic int8": dynamic(nir).clamp(0, 1),
                       "openvino fp32": run_ov(fp32_256, nir.numpy()), "openvino int8": run_ov(int8_256, nir.numpy())}
        for name, out in outputs.items():
            quality[name].append({k: float(v) for k, v in image_metrics(out, rgb).items()})
        for name, values in agreement.items():
            values.append(float(psnr(outputs[name], reference)))

    x = torch.rand(1, 1, *FRAME)
    ways = {
        "torch fp32": lambda: model(x),
        "torch dynamic int8": lambda: dynamic(x),
        "openvino fp32": lambda: fp32_frame(x.numpy()),
        "openvino int8": lambda: int8_frame(x.numpy()),
    }
    times = {name: [] for name in ways}
    with torch.inference_mode():
        for way in ways.values():
            way()  # warm-up
        for _ in range(args.rounds):
            for name, way in ways.items():
                start = time.perf_counter()
                way()
                times[name].append((time.perf_counter() - start) * 1e3)

    ms = {name: statistics.median(values) for name, values in times.items()}
    lines = [
        f"Shipped colormamba-lite; NNCF default int8 calibrated on {args.calibration} VCIP training images; "
        f"torch threads {torch.get_num_threads()}; {args.rounds} timing rounds alternated; load before: {load_before}, "
        f"after: {load()}",
        "",
        "| way | VCIP val PSNR / SSIM / AE | 640x512 frame ms | speed vs torch fp32 |",
        "|---|---|---|---|",
    ]
    for name in ways:
        mean = {k: np.mean([q[k] for q in quality[name]]) for k in ("psnr", "ssim", "ae")}
        lines.append(f"| {name} | {mean['psnr']:.2f} / {mean['ssim']:.3f} / {mean['ae']:.2f}° | {ms[name]:.1f} | "
                     f"{ms['torch fp32'] / ms[name]:.2f}x |")
    lines += ["", "int8 output against torch fp32 on VCIP val: " + ", ".join(
        f"{name} {np.mean(values):.1f} dB PSNR" for name, values in agreement.items()) + "."]
    print("\n".join(lines))
    update_section("int8", "Post-training int8: OpenVINO NNCF and torch's dynamic quantization (benchmarks/int8.py)",
                   "\n".join(lines))


if __name__ == "__main__":
    main()
