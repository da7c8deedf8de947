"""Convolutional building blocks shared by the ColorMamba sub-networks.

Every normalisation here is per pixel (a LayerNorm over channels): no batch statistics, so an
image's output never depends on the other images in its batch, and no statistics over the
whole image, so a tile of a frame sees nearly what the same pixels see in the whole frame.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a ``B×C×H×W`` map, independently at every pixel."""

    def __init__(self, dim: int, affine: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None
        self.bias = nn.Parameter(torch.zeros(dim)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        # On a channels_last tensor both permutes are free and layer_norm reads contiguous rows.
        y = F.layer_norm(x.permute(0, 2, 3, 1), (self.dim,), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class ConvNormAct(nn.Sequential):
    """Conv (no bias: the norm re-centres), per-pixel LayerNorm, GELU."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_dim, out_dim, kernel, padding=kernel // 2, bias=False),
            LayerNorm2d(out_dim),
            nn.GELU(),
        )


class ResBlock(nn.Module):
    """Two 3×3 convolutions with a residual: the local feature extractor of both U-Nets."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(dim, dim)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.norm = LayerNorm2d(dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.norm(self.conv2(self.conv1(x)))


class Downsample(nn.Sequential):
    """Halve the resolution: per-pixel norm, then a 2×2 stride-2 conv (VMamba's patch merging)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(LayerNorm2d(in_dim), nn.Conv2d(in_dim, out_dim, 2, stride=2))


class Upsample(nn.Module):
    """Double the resolution: a 1×1 conv at the low resolution (cheap), then bilinear ×2.

    The U-Nets add the encoder skip to the result (FPN style) rather than concatenating:
    the projection here already maps the coarse features into the skip's channels.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(self.proj(x), scale_factor=2.0, mode="bilinear", align_corners=False)


class LocalConv(nn.Module):
    """Depthwise 3×3 then pointwise conv: the local enhancement beside a VSS block's scan.

    The scan sees a pixel's neighbours above and below only through long detours in the
    sequence; this branch gives every token its 2-D neighbourhood directly.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.pw = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw(F.gelu(self.dw(x)))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation over a local window instead of the whole image.

    Channel weights come from the mean over a ``window``×``window`` neighbourhood (edges
    averaged over the pixels that exist), so a pixel's gate depends on nearby content only
    and tiled inference matches whole-frame inference away from tile borders. (The paper
    uses agent attention, which is global.)
    """

    def __init__(self, dim: int, reduction: int = 4, window: int = 7) -> None:
        super().__init__()
        hidden = max(dim // reduction, 4)
        self.window = window
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.avg_pool2d(x, self.window, 1, self.window // 2, count_include_pad=False)
        gate = torch.sigmoid(self.fc2(F.gelu(self.fc1(pooled.permute(0, 2, 3, 1)))))
        return x * gate.permute(0, 3, 1, 2)


class SPADE(nn.Module):
    """Spatially-adaptive modulation: normalise ``x``, then scale and shift it per pixel with
    maps predicted from a guide (here G_B's colour features at the same scale).

    This is how the HSV colour prediction steers the RGB reconstruction: the guide decides,
    pixel by pixel, how strongly and in which direction each channel is pushed.
    """

    def __init__(self, dim: int, guide_dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = LayerNorm2d(dim, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(guide_dim, hidden, 3, padding=1), nn.GELU())
        self.to_scale_shift = nn.Conv2d(hidden, 2 * dim, 3, padding=1)

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        scale, shift = self.to_scale_shift(self.shared(guide)).chunk(2, dim=1)
        return self.norm(x) * (1 + scale) + shift
