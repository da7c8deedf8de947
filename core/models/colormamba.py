"""ColorMamba: NIR-to-RGB translation with Mamba (Zhai et al., 2024).

Two U-Nets share one resolution ladder:

- **G_B**, the HSV colour-prediction sub-network (MCFNet's colour-feature embedding): a small
  convolutional U-Net on the NIR image and its Laplacian edge map. Its decoder features at
  every scale are the colour guide; its HSV map is supervised by the HSV loss in training.
- **G_A**, the RGB reconstruction U-Net: a conv stem, encoder stages of residual conv blocks
  and VSS blocks (:mod:`.ss2d`), and decoder stages that add the encoder skip and then
  modulate the result with SPADE from G_B's features at that scale.

Both start from the NIR and its edge map folded into patches of ``stem_stride``: at 1 or 2 the
U-Nets run at or near full resolution, as the paper's do; at 4 they run at a quarter of it,
which is what makes a CPU configuration affordable. Either way each ends in a
:class:`GuidedHead` that restores full-resolution detail from the full-resolution NIR: colour
is predicted at the stem's resolution as a per-pixel linear model of the NIR and its edges,
and that model is applied at full resolution.

The model pads its input (reflect) on all four sides by at least ``EDGE_MARGIN`` pixels and up
to a multiple of ``stem_stride * 2**(stages - 1)``, then crops the output back, so any ``H×W``
works and every image border looks the same to the network in training (crops of any size)
and at inference (whole frames, tiles): without the margin, a crop padded only at the bottom
and right teaches the network that those edges are padding, and a frame that needs no padding
gets a colour fringe there.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import SPADE, ConvNormAct, Downsample, ResBlock, Upsample
from .interface import ColorizationModel, pad_with_margin
from .registry import register_model
from .ss2d import VSSBlock


class Laplacian(nn.Module):
    """The 3×3 Laplacian edge map of each image (replicated borders), on the input's device.

    A fixed conv with kernel ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``, written as four shifted
    adds: at full resolution a one-channel conv is many times slower than that.
    """

    def forward(self, x: Tensor) -> Tensor:
        p = F.pad(x, (1, 1, 1, 1), mode="replicate")
        return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:] - 4 * x


class GuidedHead(nn.Module):
    """Full-resolution output from features at 1/``scale`` resolution, guided by the NIR.

    From the features, predict per pixel a linear model ``out = a * nir + e * edges + b`` for
    every output channel; upsample the coefficients (smooth, so bilinear loses little) and
    apply them to the full-resolution NIR and edge map, then squash with a sigmoid. Colour
    comes from the network, fine detail from the NIR: the idea of the (deep) guided filter,
    and cheap, since only the coefficients and a few multiply-adds touch every pixel.
    """

    def __init__(self, dim: int, out_dim: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.coeffs = nn.Conv2d(dim, 3 * out_dim, 3, padding=1)

    def forward(self, features: Tensor, nir: Tensor, edges: Tensor) -> Tensor:
        # Plain NCHW: the full-resolution elementwise work below is slow on channels_last views.
        coeffs = self.coeffs(features).contiguous()
        if self.scale > 1:
            coeffs = F.interpolate(coeffs, size=nir.shape[-2:], mode="bilinear", align_corners=False)
        a, e, b = coeffs.chunk(3, dim=1)
        return torch.sigmoid(torch.addcmul(torch.addcmul(b, a, nir), e, edges))


class HSVNet(nn.Module):
    """G_B: predicts the HSV image from NIR and its edges; its decoder features guide G_A.

    A compact conv U-Net: a patch-embedding stem, then one residual block per coarser scale
    on the way down and per scale on the way up. :meth:`forward` returns the features, finest
    scale first and the bottleneck last; :meth:`hsv` turns them into the HSV map, which only
    training needs.
    """

    def __init__(self, dims: list[int], stem_stride: int) -> None:
        super().__init__()
        self.stem = ConvNormAct(2 * stem_stride**2, dims[0], kernel=1)
        self.encoder = nn.ModuleList(
            nn.Sequential(Downsample(dims[i - 1], dims[i]), ResBlock(dims[i])) for i in range(1, len(dims))
        )
        self.up = nn.ModuleList(Upsample(dims[i + 1], dims[i]) for i in range(len(dims) - 1))
        self.decoder = nn.ModuleList(ResBlock(dims[i]) for i in range(len(dims) - 1))
        self.head = GuidedHead(dims[0], 3, stem_stride)

    def forward(self, patches: Tensor) -> list[Tensor]:
        x = self.stem(patches)
        skips = [x]
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        features = [x]
        for i in reversed(range(len(self.decoder))):
            x = self.decoder[i](self.up[i](x) + skips[i])
            features.insert(0, x)
        return features

    def hsv(self, features: list[Tensor], nir: Tensor, edges: Tensor) -> Tensor:
        return self.head(features[0], nir, edges)


class RGBNet(nn.Module):
    """G_A: reconstructs RGB from NIR, steered at every scale by G_B's features.

    Encoder stage ``i``: downsample (except the first), ``conv_depths[i]`` residual conv
    blocks, ``depths[i]`` VSS blocks. The bottleneck is modulated by SPADE; decoder stage
    ``i``: upsample, add the skip, SPADE, ``conv_depths[i]`` conv blocks,
    ``decoder_depths[i]`` VSS blocks.
    """

    def __init__(
        self,
        dims: list[int],
        guide_dims: list[int],
        depths: list[int],
        decoder_depths: list[int],
        conv_depths: list[int],
        stem_stride: int,
        spade_hidden: int,
        vss: dict[str, float],
    ) -> None:
        super().__init__()
        stages = len(dims)
        self.stem = ConvNormAct(2 * stem_stride**2, dims[0], kernel=1)
        self.encoder = nn.ModuleList(
            nn.Sequential(
                Downsample(dims[i - 1], dims[i]) if i else nn.Identity(),
                *(ResBlock(dims[i]) for _ in range(conv_depths[i])),
                *(VSSBlock(dims[i], **vss) for _ in range(depths[i])),
            )
            for i in range(stages)
        )
        self.bottleneck_spade = SPADE(dims[-1], guide_dims[-1], spade_hidden)
        self.up = nn.ModuleList(Upsample(dims[i + 1], dims[i]) for i in range(stages - 1))
        self.spade = nn.ModuleList(SPADE(dims[i], guide_dims[i], spade_hidden) for i in range(stages - 1))
        self.decoder = nn.ModuleList(
            nn.Sequential(
                *(ResBlock(dims[i]) for _ in range(conv_depths[i])),
                *(VSSBlock(dims[i], **vss) for _ in range(decoder_depths[i])),
            )
            for i in range(stages - 1)
        )
        self.head = GuidedHead(dims[0], 3, stem_stride)

    def forward(self, patches: Tensor, guides: list[Tensor], nir: Tensor, edges: Tensor) -> Tensor:
        skips = []
        x = self.stem(patches)
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = self.bottleneck_spade(x, guides[-1])
        for i in reversed(range(len(self.decoder))):
            x = self.decoder[i](self.spade[i](self.up[i](x) + skips[i], guides[i]))
        return self.head(x, nir, edges)


@register_model("colormamba")
class ColorMamba(ColorizationModel):
    """ColorMamba: G_B predicts HSV colour features, G_A reconstructs RGB guided by them.

    Widths per stage are ``ngf * width_mults[i]`` for G_A and ``nfg * width_mults[i]`` for
    G_B; stage ``i`` runs at 1/(``stem_stride`` · 2^i) of the input resolution. Every argument
    is required: the YAML files in ``configs/models/`` (lite, base, paper) are the one place
    each configuration's values live.
    """

    def __init__(
        self,
        *,
        ngf: int,
        nfg: int,
        width_mults: list[int],
        depths: list[int],
        decoder_depths: list[int],
        conv_depths: list[int],
        stem_stride: int,
        d_state: int,
        expand: float,
        mlp_ratio: float,
        attn_reduction: int,
        attn_window: int,
        spade_hidden: int,
    ) -> None:
        super().__init__()
        stages = len(width_mults)
        for name, value, n in [
            ("depths", depths, stages),
            ("conv_depths", conv_depths, stages),
            ("decoder_depths", decoder_depths, stages - 1),
        ]:
            if len(value) != n:
                raise ValueError(f"{name} needs {n} entries for {stages} width_mults, got {len(value)}")
        if stem_stride < 1:
            raise ValueError(f"stem_stride must be at least 1, got {stem_stride}")
        self.stem_stride = stem_stride
        self.multiple = stem_stride * 2 ** (stages - 1)
        self.edges = Laplacian()
        g_b_dims = [nfg * m for m in width_mults]
        self.g_b = HSVNet(g_b_dims, stem_stride)
        vss = dict(
            d_state=d_state, expand=expand, mlp_ratio=mlp_ratio,
            attn_reduction=attn_reduction, attn_window=attn_window,
        )
        self.g_a = RGBNet(
            [ngf * m for m in width_mults], g_b_dims, list(depths), list(decoder_depths),
            list(conv_depths), stem_stride, spade_hidden, vss,
        )

    def forward(self, nir: Tensor) -> Tensor:
        """NIR ``B×1×H×W`` in [0, 1] to RGB ``B×3×H×W`` in [0, 1]."""
        return self._run(nir, with_hsv=False)["rgb"]

    def forward_with_aux(self, nir: Tensor) -> dict[str, Tensor]:
        """``{"rgb": ..., "hsv": ...}``: the RGB output and G_B's HSV prediction, both in [0, 1]."""
        return self._run(nir, with_hsv=True)

    def _run(self, nir: Tensor, with_hsv: bool) -> dict[str, Tensor]:
        h, w = nir.shape[-2:]
        nir, (top, left) = pad_with_margin(nir, self.multiple)
        edges = self.edges(nir)
        # Both U-Nets start from the same image folded to the stem's resolution: every
        # stem_stride × stem_stride patch of NIR and edges becomes one pixel's channels.
        patches = F.pixel_unshuffle(torch.cat([nir, edges], dim=1), self.stem_stride)
        guides = self.g_b(patches)
        out = {"rgb": self.g_a(patches, guides, nir, edges)[..., top : top + h, left : left + w]}
        if with_hsv:  # inference skips G_B's full-resolution head
            out["hsv"] = self.g_b.hsv(guides, nir, edges)[..., top : top + h, left : left + w]
        return out
