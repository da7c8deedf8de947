"""Temporal stability: smoothing colour across frames along the motion.

A per-frame colorizer re-guesses colour on every frame. It was first taken that the shimmer
is in hue alone, so :class:`TemporalSmoother` averaged chroma only; measured against
ground-truth twins with CDC (``benchmarks/flicker.py``), most of the flicker turned out to be
in the output's luma (a strided network answers a sub-pixel shift of the view with slightly
different texture), so by default it averages luma too, along the NIR's optical flow, where
the warped previous NIR matches the current one: what moves is followed, not smeared.

The luma/chroma space is full-range BT.601 YCbCr (the JPEG one): it is linear in RGB, so the
split and its inverse are exact and cheap on the device, and for a fixed luma the in-gamut
chroma values form a convex set, so blending two in-gamut chromas at the same luma stays in
gamut. Lab would be more perceptual but needs a nonlinear round trip per pixel per frame.
"""

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nirstream.core.errors import ConfigError
from nirstream.core.metrics.temporal import SCENE_CUT

FLOW_FULL_BELOW = 240
"""Frames whose short side is below this get their optical flow at full resolution."""

FLOW_MIN_SIZE = 12
"""OpenCV's DIS flow needs a side of at least this: smaller frames (thumbnails) are smoothed in place."""

# BT.601 luma weights; Cb and Cr are the blue and red differences scaled to [-0.5, 0.5].
KR, KB = 0.299, 0.114
KG = 1.0 - KR - KB
CB_SCALE, CR_SCALE = 2.0 * (1.0 - KB), 2.0 * (1.0 - KR)


def rgb_to_ycbcr(rgb: Tensor) -> Tensor:
    """``B×3×H×W`` RGB in [0,1] to Y in [0,1] and Cb, Cr in [-0.5, 0.5] (no offset, so gray is 0)."""
    r, g, b = rgb.unbind(dim=1)
    y = KR * r + KG * g + KB * b
    return torch.stack((y, (b - y) / CB_SCALE, (r - y) / CR_SCALE), dim=1)


def ycbcr_to_rgb(ycbcr: Tensor) -> Tensor:
    """Exact inverse of :func:`rgb_to_ycbcr` (no clamping: the caller decides)."""
    y, cb, cr = ycbcr.unbind(dim=1)
    r = y + CR_SCALE * cr
    b = y + CB_SCALE * cb
    g = (y - KR * r - KB * b) / KG
    return torch.stack((r, g, b), dim=1)


@dataclass
class TemporalConfig:
    """Smoothing across frames: an exponential average that resets on cuts and follows motion
    (``flow``: along the NIR's optical flow; ``luma``: brightness too, not only chroma; see
    :class:`TemporalSmoother`). ``enabled: auto`` (the default) smooths videos, cameras
    and streams and leaves image folders alone (their images are independent); the colorizer
    learns which at :meth:`~.colorizer.Colorizer.start_input`. ``cut_threshold`` is the run
    summary's scene cut (:data:`~nirstream.core.metrics.temporal.SCENE_CUT`)."""

    enabled: bool | str = "auto"
    flow: bool = True
    luma: bool = True
    alpha: float = 0.85
    cut_threshold: float = SCENE_CUT
    motion_threshold: float = 0.03

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha < 1.0:
            raise ConfigError(f"temporal.alpha must be in [0, 1), got {self.alpha}")
        if self.cut_threshold <= 0.0 or self.motion_threshold <= 0.0:
            raise ConfigError(f"temporal thresholds must be positive, got cut {self.cut_threshold} "
                              f"and motion {self.motion_threshold}")


class TemporalSmoother:
    """Exponential moving average of colour over frames: chroma, and with ``luma`` brightness too.

    Per pixel, ``chroma = alpha * chroma_prev + (1 - alpha) * chroma_now`` where the previous
    frame matches; where the NIR differs by more than ``motion_threshold`` the current chroma
    is taken as is, so a moving object carries its own colour instead of smearing the old one.
    The NIR, not the colorizer's output, decides: it is the measured signal, while the
    output's luma carries the model's own frame-to-frame noise.

    With ``flow`` the previous frame is first moved onto the current one along the optical
    flow of the NIR (OpenCV's DIS, from the current frame back to the previous one), so a pan,
    a zoom or a moving car is averaged along its motion instead of being left unsmoothed; the
    NIR warp error then marks what the flow could not match (occlusions, new content). Without
    it, only pixels that did not move are averaged.

    With ``luma`` the output's luma is averaged too. Measured against ground-truth twins
    (``benchmarks/flicker.py``), most of a per-frame colorizer's flicker is in its luma, not its
    chroma: its strided network answers a sub-pixel shift of the view with a slightly different
    texture every frame. Along the flow, averaging luma steadies that without blurring motion.

    A frame whose mean absolute NIR change exceeds ``cut_threshold`` is a scene cut: for that
    batch element the state restarts from the current frame. The test is a tensor op (no host
    synchronisation), per batch element. A change of shape (frame size or batch) or of device
    resets the state on the host side, where those are known without touching the device.

    The state (previous smoothed chroma and previous NIR) stays on the input's device, in
    float32 whatever the input dtype, so an fp16 stream does not accumulate rounding.
    Output luma equals the input's except where the blended colour leaves the RGB cube and
    is clamped to [0, 1], which only happens when luma itself changed between frames.
    """

    def __init__(self, config: TemporalConfig) -> None:
        self.alpha = config.alpha
        self.cut_threshold = config.cut_threshold
        self.motion_threshold = config.motion_threshold
        self.luma = config.luma
        flow = config.flow
        self._identity: Tensor | None = None  # the sampling grid of no motion, per frame size
        self._nir8: list[np.ndarray] = []  # the previous frame's NIR as DIS takes it
        self._pixel: Tensor | None = None
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST) if flow else None
        if flow:
            # OpenCV's thread pool fights torch's threads for the cores, and the flow of a
            # half-size frame gains nothing from it: smoothing cost 17 % of the frame time with
            # it, 9 % without (480x320, 2 cores).
            cv2.setNumThreads(1)
        self._chroma: Tensor | None = None
        self._nir: Tensor | None = None

    def reset(self) -> None:
        """Forget the past: the next frame passes through unchanged and starts a new average."""
        self._chroma = None
        self._nir = None

    @torch.no_grad()
    def __call__(self, rgb: Tensor, nir: Tensor, host_nir: Tensor | None = None) -> Tensor:
        """Smooth one frame (``rgb`` ``B×3×H×W``, ``nir`` ``B×1×H×W``, both in [0,1]); same shape and dtype out.

        The optical flow runs on the host: ``host_nir`` is ``nir`` in host memory where the
        caller has it (a CUDA frame before its upload), so that no copy back waits for the GPU.
        """
        if rgb.dim() != 4 or rgb.shape[1] != 3:
            raise ValueError(f"rgb must be B×3×H×W, got shape {tuple(rgb.shape)}")
        if nir.shape != (rgb.shape[0], 1, *rgb.shape[2:]):
            raise ValueError(f"nir must be B×1×H×W matching rgb {tuple(rgb.shape)}, got {tuple(nir.shape)}")
        ycbcr = rgb_to_ycbcr(rgb.float())
        nir = nir.to(device=rgb.device, dtype=torch.float32)
        flow_nir = nir if host_nir is None else host_nir
        chroma = ycbcr if self.luma else ycbcr[:, 1:]  # "chroma": what is averaged
        prev_chroma, prev_nir = self._chroma, self._nir
        if prev_chroma is None or prev_chroma.shape != chroma.shape or prev_chroma.device != chroma.device:
            smoothed = chroma
            if self._dis is not None:
                self._nir8 = _as_8bit(flow_nir)
        else:
            if self._dis is not None:  # both moved in one sampling pass
                moved = _warp(torch.cat((prev_chroma, prev_nir), dim=1), self._flow_grid(flow_nir).to(nir.device))
                prev_chroma, prev_nir = moved[:, :-1], moved[:, -1:]
            change = (nir - prev_nir).abs()
            is_cut = change.mean(dim=(1, 2, 3), keepdim=True) > self.cut_threshold
            is_static = (change <= self.motion_threshold) & ~is_cut
            # alpha where static, 0 (take the current chroma) where moving or after a cut.
            weight = is_static.to(chroma.dtype) * self.alpha
            smoothed = torch.lerp(chroma, prev_chroma, weight)
        self._chroma, self._nir = smoothed, nir
        out = ycbcr_to_rgb(smoothed if self.luma else torch.cat((ycbcr[:, :1], smoothed), dim=1)).clamp_(0.0, 1.0)
        return out.to(rgb.dtype)


    def _flow_grid(self, nir: Tensor) -> Tensor:
        """``B×H×W×2`` sampling grid (grid_sample's [-1, 1] units, on the host) that moves the previous
        frame onto the current; keeps the current frame's 8-bit NIR for the next call."""
        height, width = nir.shape[-2:]
        if self._identity is None or self._identity.shape[:2] != (height, width):
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
            self._identity = torch.stack((xs, ys), dim=-1)
            self._pixel = torch.tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
        current = _as_8bit(nir)
        flows = [torch.from_numpy(self._flow(now, before)) for now, before in zip(current, self._nir8)]
        self._nir8 = current
        # per current pixel: where it was in the previous frame, in grid_sample's units
        return torch.addcmul(self._identity, torch.stack(flows), self._pixel)

    def _flow(self, now: np.ndarray, before: np.ndarray) -> np.ndarray:
        """DIS flow at half resolution above :data:`FLOW_FULL_BELOW` px (a quarter of the cost; the
        motion of a scene is smooth), scaled back to the frame."""
        height, width = now.shape
        if max(height, width) < FLOW_MIN_SIZE:  # too small for DIS: no motion to follow
            return np.zeros((height, width, 2), np.float32)
        if min(height, width) < FLOW_FULL_BELOW:
            return self._dis.calc(now, before, None)
        half = (width // 2, height // 2)
        shrink = lambda image: cv2.resize(image, half, interpolation=cv2.INTER_AREA)  # noqa: E731
        flow = self._dis.calc(shrink(now), shrink(before), None)
        return cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * np.float32(2.0)


def _as_8bit(nir: Tensor) -> list[np.ndarray]:
    """``B×1×H×W`` [0, 1] NIR as 8-bit host images, the input DIS flow takes."""
    return list(nir[:, 0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8).cpu().numpy())


def _warp(image: Tensor, grid: Tensor) -> Tensor:
    """Sample ``image`` at ``grid`` (bilinear, edges repeated where the flow points outside)."""
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True)
