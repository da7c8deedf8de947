"""Colour Distribution Consistency (CDC): how much a video's colours flicker from frame to frame.

The metric of TCVC (Thasarathan et al.) and of the NTIRE 2023 video colorization challenge:
for every frame, a 256-bin histogram of each of R, G and B (8-bit levels, normalised to sum 1);
the Jensen-Shannon divergence (natural log) between frame t and frames t+1, t+2 and t+4; per
step, the mean over the frame pairs and the three channels; CDC is the mean of the three steps.
Lower is steadier. Part of any CDC is real content change (a pan, a zoom), so a figure means
most beside the same figure for the true colour sequence: flicker is what an output adds to it.

:class:`CDCMeter` computes it on a stream in bounded memory (the last four histograms); a
``cut`` restarts it, so that pairs across a scene cut are left out. :class:`SceneCuts` says
where the cuts are, the one rule for the run summary, ``eval --video`` and the smoother.
"""

from collections import deque

import cv2
import numpy as np

CDC_STEPS = (1, 2, 4)
"""Frame distances compared, weighted equally."""

SCENE_CUT = 0.1
"""Mean absolute NIR change, as a share of the full scale, above which a frame starts a new scene."""


class SceneCuts:
    """Whether each NIR frame of a stream starts a new scene: its mean absolute change from the
    previous frame (every 4th pixel) above :data:`SCENE_CUT` of ``full_scale``, or a new size."""

    def __init__(self, full_scale: int, level: float = SCENE_CUT) -> None:
        self.threshold = level * full_scale
        self._previous: np.ndarray | None = None

    def __call__(self, nir: np.ndarray) -> bool:
        sample, previous = nir[::4, ::4], self._previous
        self._previous = sample
        if previous is None:
            return False
        if previous.shape != sample.shape:
            return True
        return float(np.abs(sample.astype(np.int32) - previous).mean()) > self.threshold


def colour_histograms(rgb: np.ndarray) -> np.ndarray:
    """``3×256`` histograms of an ``H×W×3`` uint8 image's R, G and B, each summing to 1."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"colour histograms need H×W×3 uint8 RGB, got {rgb.dtype} {rgb.shape}")
    counts = np.stack([cv2.calcHist([rgb], [c], None, [256], [0, 256]).reshape(-1) for c in range(3)]).astype(np.float64)
    return counts / counts.sum(axis=1, keepdims=True)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log, 0 to ln 2) between distributions along the last axis."""
    m = 0.5 * (p + q)
    return 0.5 * (_kl(p, m) + _kl(q, m))


def _kl(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / m), 0.0)  # 0 log 0 = 0; m > 0 wherever p > 0
    return terms.sum(axis=-1)


class CDCMeter:
    """CDC of a stream of frames, one :meth:`add` per frame; :attr:`value` is None until a pair
    exists at every step (five frames in one shot)."""

    def __init__(self) -> None:
        self._recent: deque[np.ndarray] = deque(maxlen=max(CDC_STEPS))
        self._sums = dict.fromkeys(CDC_STEPS, 0.0)
        self._counts = dict.fromkeys(CDC_STEPS, 0)

    def add(self, rgb: np.ndarray, cut: bool = False) -> None:
        """Count ``rgb`` (``H×W×3`` uint8); ``cut``: it starts a new scene, compare it with nothing before."""
        histograms = colour_histograms(rgb)
        if cut:
            self._recent.clear()
        for step in CDC_STEPS:
            if len(self._recent) >= step:
                self._sums[step] += float(js_divergence(self._recent[-step], histograms).mean())
                self._counts[step] += 1
        self._recent.append(histograms)

    @property
    def value(self) -> float | None:
        if not all(self._counts.values()):
            return None
        return float(np.mean([self._sums[step] / self._counts[step] for step in CDC_STEPS]))


def cdc(frames: list[np.ndarray], cuts: set[int] | frozenset[int] = frozenset()) -> float | None:
    """CDC of ``H×W×3`` uint8 frames; ``cuts``: indices of frames that start a new scene."""
    meter = CDCMeter()
    for index, rgb in enumerate(frames):
        meter.add(rgb, cut=index in cuts)
    return meter.value
