"""Fréchet Inception Distance (FID), from Inception weights in a local file only.

FID compares the mean and covariance of Inception-v3 pool features of two image sets. Its
weights cannot be downloaded here, so nirstream never fetches or fakes them: FID is computed
only from a local TorchScript feature extractor, the ``inception-2015-12-05.pt`` that
StyleGAN3 and clean-fid use (uint8 ``N×3×H×W`` in, 2048 features out with
``return_features=True``), and reports say plainly when none was given. TorchScript files are
loaded with ``torch.jit.load``, which runs no Python pickle code; still, load only files you trust.

FID is biased upwards for small sets (its covariances need thousands of images to settle):
compare FIDs only between sets of the same size, such as two models on the same val split.
"""

from pathlib import Path

import torch
from torch import Tensor

from nirstream.core.errors import WeightsError

FID_UNAVAILABLE = "FID not available: it needs Inception-v3 weights, which cannot be downloaded here (pass --fid-weights FILE)"


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """``|mu_a - mu_b|² + tr(S_a + S_b - 2 (S_a S_b)^½)`` of two ``N×D`` feature sets, in float64.

    ``tr((S_a S_b)^½)`` is the sum of square roots of the eigenvalues of ``S_a^½ S_b S_a^½``,
    a symmetric positive semi-definite matrix: no general matrix square root is needed.
    """
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("FID needs at least two images per set")
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    middle = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * middle)


class FIDAccumulator:
    """Collects Inception features of predicted and real images, then gives their FID."""

    def __init__(self, weights: str | Path, device: torch.device) -> None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"Inception weights for FID not found: {path}")
        try:
            self.net = torch.jit.load(str(path), map_location=device).eval()
        except (RuntimeError, ValueError) as exc:
            raise WeightsError(f"{path} is not a TorchScript Inception feature extractor ({str(exc).splitlines()[0][:100]})") from exc
        self.features: dict[str, list[Tensor]] = {"pred": [], "real": []}

    @torch.inference_mode()
    def add(self, pred: Tensor, real: Tensor) -> None:
        """Add a batch of predicted and real RGB images (``B×3×H×W`` in [0, 1])."""
        for key, images in (("pred", pred), ("real", real)):
            uint8 = (images.clamp(0, 1) * 255).round().to(torch.uint8)
            self.features[key].append(self.net(uint8, return_features=True).double().cpu())

    def value(self) -> float:
        return frechet_distance(torch.cat(self.features["pred"]), torch.cat(self.features["real"]))
