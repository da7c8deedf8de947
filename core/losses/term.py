"""The interface every training-loss term implements, so :mod:`composite` can weight any mix."""

from abc import ABC, abstractmethod
from collections.abc import Mapping

from torch import Tensor, nn


class LossTerm(nn.Module, ABC):
    """One loss term: a scalar from the model's outputs and the target RGB image.

    ``needs`` names the model outputs the term reads (``rgb``: B×3×H×W in [0,1]; ``hsv``:
    ColorMamba's HSV-branch map). The composite checks they are present before calling it.
    Constructor keyword arguments are the term's options in the YAML loss spec.
    """

    needs: tuple[str, ...] = ("rgb",)

    @abstractmethod
    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        """The term's scalar value; 0 when the prediction equals the target."""
