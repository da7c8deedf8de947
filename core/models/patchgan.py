"""pix2pix's PatchGAN discriminator (Isola et al. 2017), conditioned on the NIR input.

Instead of one real/fake score per image it scores every overlapping patch (70×70 pixels
with the default three stride-2 layers), so it judges local texture and colour, leaving
global structure to the reconstruction losses. Conditional: it sees the NIR frame beside the
RGB image, so a plausible colouring of the wrong scene is still fake.
"""

import torch
from torch import Tensor, nn

_KERNEL = 4
NORMS = ("instance", "batch")


class PatchGANDiscriminator(nn.Module):
    """``(nir, rgb) -> B×1×h×w`` map of raw real/fake scores (no sigmoid: pair with LSGAN).

    ``num_layers`` stride-2 convolutions shrink the input, then two stride-1 ones;
    ``receptive_field`` is the patch each score sees (70 for the default 3). Channels double
    per layer from ``base_channels`` up to ``8 · base_channels``. ``nir_channels = 0`` makes
    it unconditional (pass ``nir=None``).
    """

    def __init__(
        self,
        nir_channels: int = 1,
        rgb_channels: int = 3,
        base_channels: int = 64,
        num_layers: int = 3,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got '{norm}'")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.nir_channels = nir_channels
        self.rgb_channels = rgb_channels
        self.num_layers = num_layers

        def normalised_block(in_ch: int, out_ch: int, stride: int) -> list[nn.Module]:
            # Norm layers carry their own shift, so the convolution needs no bias.
            norm_layer = nn.InstanceNorm2d(out_ch) if norm == "instance" else nn.BatchNorm2d(out_ch)
            return [
                nn.Conv2d(in_ch, out_ch, _KERNEL, stride=stride, padding=1, bias=False),
                norm_layer,
                nn.LeakyReLU(0.2, inplace=True),
            ]

        layers: list[nn.Module] = [
            nn.Conv2d(nir_channels + rgb_channels, base_channels, _KERNEL, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = base_channels
        for layer in range(1, num_layers):
            out = base_channels * min(2**layer, 8)
            layers += normalised_block(channels, out, stride=2)
            channels = out
        out = base_channels * min(2**num_layers, 8)
        layers += normalised_block(channels, out, stride=1)
        layers.append(nn.Conv2d(out, 1, _KERNEL, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)

    @property
    def receptive_field(self) -> int:
        """Side in input pixels of the patch behind each output score."""
        strides = [2] * self.num_layers + [1, 1]
        field, jump = 1, 1
        for stride in strides:
            field += (_KERNEL - 1) * jump
            jump *= stride
        return field

    def forward(self, nir: Tensor | None, rgb: Tensor) -> Tensor:
        if not self.nir_channels:
            return self.net(rgb)
        if nir is None:
            raise ValueError(
                f"this discriminator is conditional: pass the {self.nir_channels}-channel NIR input"
            )
        return self.net(torch.cat((nir, rgb), dim=1))


def _init_weights(module: nn.Module) -> None:
    """pix2pix initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
