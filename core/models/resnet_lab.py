"""``resnet34-lab``: a fast CNN colorizer in CIELAB, the NIR frame standing in for L.

The encoder is the first six stages of a ResNet-34 (He et al. 2016: the 7×7 stride-2 stem
convolution, its batch norm and ReLU, the max-pool, and the residual layers 1 and 2), with one
input channel and trained from scratch: no pretrained weights can be downloaded here. It ends
at 1/8 resolution with 128 channels. The decoder (3×3 convolution, batch norm, ReLU, ×2
upsampling, three times) predicts the a and b channels, normalised by
:data:`~nirstream.core.colorspace.AB_SCALE`, and the output is Lab(NIR, a, b) in RGB.
Chroma is smooth at 1/8 resolution; all the detail comes from the full-resolution L.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from nirstream.core.colorspace import nir_ab_to_rgb

from .interface import ColorizationModel, pad_with_margin
from .registry import register_model


class BasicBlock(nn.Module):
    """ResNet's two-convolution residual block; a strided 1×1 projection when the shape changes."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))
            if stride != 1 or in_channels != channels
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.downsample(x))


def resnet34_stem(in_channels: int = 1) -> nn.Sequential:
    """ResNet-34's first six stages: conv1, bn1, relu, maxpool, layer1 (3 blocks), layer2 (4 blocks)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
        nn.Sequential(*(BasicBlock(64, 64) for _ in range(3))),
        nn.Sequential(BasicBlock(64, 128, stride=2), *(BasicBlock(128, 128) for _ in range(3))),
    )


@register_model("resnet34-lab")
class ResNet34LAB(ColorizationModel):
    """NIR ``B×1×H×W`` in [0, 1] to RGB: ResNet-34 stem encoder, conv/BN/ReLU/upsample decoder, Lab output.

    ``decoder_channels`` are the widths of the three decoder stages (1/4, 1/2, full resolution).
    """

    multiple = 8  # the encoder's total stride

    def __init__(self, decoder_channels: list[int] = (128, 64, 32)) -> None:
        super().__init__()
        if len(decoder_channels) != 3:
            raise ValueError(f"decoder_channels needs 3 widths (1/4, 1/2, full resolution), got {list(decoder_channels)}")
        self.encoder = resnet34_stem(1)
        layers, width = [], 128
        for channels in decoder_channels:
            layers += [
                nn.Conv2d(width, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            ]
            width = channels
        self.decoder = nn.Sequential(*layers, nn.Conv2d(width, 2, 3, padding=1))

    def forward(self, nir: Tensor) -> Tensor:
        return self.forward_with_aux(nir)["rgb"]

    def forward_with_aux(self, nir: Tensor) -> dict[str, Tensor]:
        """``{"rgb": ..., "ab": ...}``: the RGB output and the normalised a/b prediction (in [-1, 1])."""
        h, w = nir.shape[-2:]
        padded, (top, left) = pad_with_margin(nir, self.multiple)
        ab = self.decoder(self.encoder(padded * 2.0 - 1.0)).tanh()[..., top : top + h, left : left + w]
        return {"rgb": nir_ab_to_rgb(nir, ab), "ab": ab}

