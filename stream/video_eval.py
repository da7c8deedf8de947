"""``nirstream eval --video``: a model's colour flicker on a NIR video, and its error against a
ground-truth colour twin when there is one (``tools/make_flicker_clips.py`` makes such pairs).

The video is colorized as ``nirstream run`` would (the engine settings of a run, chroma
smoothing included when it is on); frames are compared with the twin frame by frame, so the
two must have the same frames at the same size.
"""

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from torch import nn

from nirstream.core.errors import DataError
from nirstream.core.metrics import CDCMeter, SceneCuts, image_metrics
from nirstream.stream.colorizer import Colorizer, ColorizerConfig
from nirstream.stream.sources import VideoSource


@dataclass
class VideoReport:
    frames: int
    cdc: float | None
    truth_cdc: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    ae: float | None = None

    def table(self) -> str:
        lines = [f"frames: {self.frames}", f"colour flicker, CDC (lower is steadier): {_figure(self.cdc)}"]
        if self.truth_cdc is not None:
            excess = None if self.cdc is None else self.cdc - self.truth_cdc
            lines += [
                f"CDC of the ground truth: {_figure(self.truth_cdc)}; excess flicker: {_figure(excess)}",
                f"against the ground truth, mean per frame: PSNR {self.psnr:.2f} dB, SSIM {self.ssim:.4f}, AE {self.ae:.2f} deg",
            ]
        return "\n".join(lines)


def evaluate_video(model: nn.Module, video: Path, truth: Path | None, engine: ColorizerConfig) -> VideoReport:
    colorizer = Colorizer(model, engine)
    colorizer.start_input(sequence=True)
    truth_frames = _rgb_frames(truth) if truth is not None else None
    output, expected = CDCMeter(), CDCMeter()
    sums = {"psnr": 0.0, "ssim": 0.0, "ae": 0.0}
    count = 0
    with VideoSource(video) as source:
        cuts = SceneCuts((1 << source.info.bit_depth) - 1)  # left out of CDC, as the run summary does
        for frame in colorizer.run(source):
            cut = cuts(frame.nir)
            output.add(frame.rgb, cut=cut)
            if truth_frames is not None:
                true_rgb = next(truth_frames, None)
                if true_rgb is None or true_rgb.shape != frame.rgb.shape:
                    raise DataError(f"{truth} does not match {video} frame for frame (at frame {count})")
                expected.add(true_rgb, cut=cut)
                scores = image_metrics(_tensor(frame.rgb), _tensor(true_rgb))
                for name in sums:
                    sums[name] += float(scores[name])
            count += 1
    if count == 0:
        raise DataError(f"{video}: no frames")
    if truth_frames is None:
        return VideoReport(count, output.value)
    return VideoReport(count, output.value, expected.value, *(sums[name] / count for name in ("psnr", "ssim", "ae")))


def _rgb_frames(path: Path):
    if not path.is_file():
        raise DataError(f"ground truth not found: {path}")
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def _figure(value: float | None) -> str:
    return "needs 5 frames" if value is None else f"{value:.5f}"
