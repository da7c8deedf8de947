"""``pix2pix-lab``: pix2pix's U-Net generator (Isola et al. 2017) in CIELAB, the NIR frame as L.

Encoder: ``depth`` 4×4 stride-2 convolutions (LeakyReLU 0.2, batch norm after the first),
channels doubling from ``ngf`` up to ``8 · ngf``. Decoder: the mirror image with 4×4
transposed convolutions (ReLU, batch norm), each concatenating the encoder's map of the same
size (the skip connections that carry edges straight across), dropout 0.5 in the
``dropout_layers`` innermost ones as in pix2pix. It predicts a and b normalised by
:data:`~nirstream.core.colorspace.AB_SCALE` (tanh); the output is Lab(NIR, a, b) in RGB. It is
trained with L1 on ab plus the conditional PatchGAN's adversarial term
(:class:`~nirstream.core.models.patchgan.PatchGANDiscriminator`, ``gan:`` in the train config).
"""

import torch
from torch import Tensor, nn

from nirstream.core.colorspace import nir_ab_to_rgb

from .interface import ColorizationModel, pad_with_margin
from .registry import register_model


@register_model("pix2pix-lab")
class Pix2PixLAB(ColorizationModel):
    """NIR ``B×1×H×W`` in [0, 1] to RGB through a ``depth``-level U-Net predicting Lab's a and b."""

    def __init__(self, ngf: int = 64, depth: int = 8, dropout_layers: int = 3) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        if not 0 <= dropout_layers < depth:
            raise ValueError(f"dropout_layers must be in [0, depth), got {dropout_layers}")
        self.multiple = 2**depth
        widths = [ngf * min(2**i, 8) for i in range(depth)]
        self.down = nn.ModuleList()
        in_channels = 1
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            layers.append(nn.Conv2d(in_channels, width, 4, 2, 1, bias=i in (0, depth - 1)))
            if 0 < i < depth - 1:  # neither the input layer nor the 1×1 bottleneck is normalised
                layers.append(nn.BatchNorm2d(width))
            self.down.append(nn.Sequential(*layers))
            in_channels = width
        self.up = nn.ModuleList()
        for i in reversed(range(1, depth)):  # up[k] produces the map that pairs with down[i - 1]
            from_below = widths[i] if i == depth - 1 else 2 * widths[i]
            layers = [nn.ReLU(inplace=True), nn.ConvTranspose2d(from_below, widths[i - 1], 4, 2, 1, bias=False),
                      nn.BatchNorm2d(widths[i - 1])]
            if depth - 1 - i < dropout_layers:
                layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))
        self.head = nn.Sequential(nn.ReLU(inplace=True), nn.ConvTranspose2d(2 * widths[0], 2, 4, 2, 1), nn.Tanh())

    def forward(self, nir: Tensor) -> Tensor:
        return self.forward_with_aux(nir)["rgb"]

    def forward_with_aux(self, nir: Tensor) -> dict[str, Tensor]:
        """``{"rgb": ..., "ab": ...}``: the RGB output and the normalised a/b prediction (in [-1, 1])."""
        h, w = nir.shape[-2:]
        x, (top, left) = pad_with_margin(nir, self.multiple)
        x = x * 2.0 - 1.0
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck itself feeds the first up layer
        for layer in self.up:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        ab = self.head(x)[..., top : top + h, left : left + w]
        return {"rgb": nir_ab_to_rgb(nir, ab), "ab": ab}
