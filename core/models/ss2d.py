"""The 2-D selective scan (SS2D) and the visual state-space (VSS) block built around it.

SS2D follows VMamba: the feature map is read as four 1-D sequences (row-major, column-major,
and both reversed), each direction with its own projections, all scanned in one
:func:`~nirstream.core.ops.selective_scan` call, and the four outputs summed back onto the map.
Every token thereby gathers context from the whole map along four routes.

ColorMamba adds learnable padding tokens: a one-token border of learned embeddings around the
map, so that in the flattened sequence the end of one row never runs straight into the start
of the next, and every scan starts and ends on learned context rather than on image content.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nirstream.core.ops import checked_backend, selective_scan

from .blocks import ChannelAttention, LayerNorm2d, LocalConv

DIRECTIONS = 4  # row-major, column-major, and both reversed
SCAN_FLOPS_PER_UPDATE = 7  # exp(dt*A), dt*u*B, h = a*h + b, y += C*h: about 7 per (channel, token, state)


class SS2D(nn.Module):
    """Four-direction selective scan over a ``B×C×H×W`` map, gated Mamba style.

    in_proj splits into a scanned branch ``x`` (depthwise 3×3 conv + SiLU) and a gate ``z``;
    per direction, x_proj predicts (dt, B, C) from every token and dt_proj lifts dt from
    rank ``dt_rank`` to one step size per channel. The merged output is normalised, gated by
    ``silu(z)`` and projected back to ``dim``.
    """

    def __init__(
        self,
        dim: int,
        d_state: int = 16,
        expand: float = 2.0,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        scan_backend: str = "auto",
    ) -> None:
        super().__init__()
        self.scan_backend = checked_backend(scan_backend)  # which kernel scans (set_scan_backend)
        d_inner = int(expand * dim)
        dt_rank = math.ceil(dim / 16)
        self.d_inner, self.d_state, self.dt_rank = d_inner, d_state, dt_rank

        self.in_proj = nn.Linear(dim, 2 * d_inner, bias=False)
        self.conv = nn.Conv2d(d_inner, d_inner, 3, padding=1, groups=d_inner)
        # Border embeddings: top, bottom, left, right.
        self.pad_tokens = nn.Parameter(torch.randn(4, d_inner) * 0.02)

        bound = d_inner**-0.5
        self.x_proj_weight = nn.Parameter(
            torch.empty(DIRECTIONS, dt_rank + 2 * d_state, d_inner).uniform_(-bound, bound)
        )
        self.dt_proj_weight = nn.Parameter(
            torch.empty(DIRECTIONS, d_inner, dt_rank).uniform_(-(dt_rank**-0.5), dt_rank**-0.5)
        )
        # Mamba's dt init: step sizes log-uniform in [dt_min, dt_max], stored through the
        # inverse softplus so that softplus(bias) gives them back.
        dt = torch.exp(
            torch.rand(DIRECTIONS, d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        ).clamp_min(1e-4)
        self.dt_proj_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        # S4D-real init: A = -(1, 2, ..., d_state) for every channel of every direction.
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(DIRECTIONS * d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(DIRECTIONS * d_inner))

        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x, z = self.in_proj(x.permute(0, 2, 3, 1)).chunk(2, dim=-1)  # each B×H×W×d_inner
        x = F.silu(self.conv(x.permute(0, 3, 1, 2)))
        y = self.scan(self.pad(x))[:, :, 1:-1, 1:-1]
        # The scan returns fp32; a model cast to half (TensorRT fp16) needs its own dtype back.
        y = self.out_norm(y.permute(0, 2, 3, 1).to(self.out_norm.weight.dtype)) * F.silu(z)
        return self.out_proj(y).permute(0, 3, 1, 2)

    def uncounted_flops(self, input_shape: torch.Size) -> float:
        """The scan's recurrence, which a FLOP counter does not see (its matmuls it does): about
        :data:`SCAN_FLOPS_PER_UPDATE` per (channel, token, state) on the map and its border."""
        b, _, h, w = input_shape
        return float(b * DIRECTIONS * self.d_inner * (h + 2) * (w + 2) * self.d_state * SCAN_FLOPS_PER_UPDATE)

    def pad(self, x: Tensor) -> Tensor:
        """Surround the map with the learned border tokens: ``H×W`` becomes ``(H+2)×(W+2)``.

        A corner belongs to two sides and gets the sum of both, so the border treats rows
        and columns alike.
        """
        top, bottom, left, right = (t.to(x.dtype).view(1, -1, 1) for t in self.pad_tokens)
        x = F.pad(x, (1, 1, 1, 1))
        x[:, :, 0] += top
        x[:, :, -1] += bottom
        x[:, :, :, 0] += left
        x[:, :, :, -1] += right
        return x

    def scan(self, x: Tensor) -> Tensor:
        """Scan ``x`` (B×d×H×W) in the four directions and sum the results on the map."""
        b, d, h, w = x.shape
        length = h * w
        rows, cols = x.flatten(2), x.transpose(2, 3).flatten(2)
        xs = torch.stack([rows, cols], dim=1)
        xs = torch.cat([xs, xs.flip(-1)], dim=1)  # B×4×d×L

        proj = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj_weight)
        dts, Bs, Cs = proj.split([self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_proj_weight)
        ys = selective_scan(
            xs.reshape(b, DIRECTIONS * d, length),
            dts.reshape(b, DIRECTIONS * d, length),
            -torch.exp(self.A_log),
            Bs.contiguous(),
            Cs.contiguous(),
            self.D,
            delta_bias=self.dt_proj_bias.flatten(),
            delta_softplus=True,
            backend=self.scan_backend,
        ).view(b, DIRECTIONS, d, length)

        ys = ys[:, :2] + ys[:, 2:].flip(-1)  # fold each reversed scan onto its forward twin
        return ys[:, 0].view(b, d, h, w) + ys[:, 1].view(b, d, w, h).transpose(2, 3)


class Mlp(nn.Module):
    """The VSS block's feed-forward part: Linear, GELU, Linear over the channels of each pixel."""

    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x.permute(0, 2, 3, 1)))).permute(0, 3, 1, 2)


class VSSBlock(nn.Module):
    """A VSS block with ColorMamba's additions, on ``B×C×H×W`` maps.

    ``x + attn(ss2d(norm(x)) + local(norm(x)))``, then ``x + mlp(norm(x))``: the global scan
    and a local conv branch mix tokens side by side, channel attention re-weights their sum,
    and the MLP mixes channels.
    """

    def __init__(
        self,
        dim: int,
        d_state: int = 16,
        expand: float = 2.0,
        mlp_ratio: float = 4.0,
        attn_reduction: int = 4,
        attn_window: int = 7,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim)
        self.ss2d = SS2D(dim, d_state, expand)
        self.local = LocalConv(dim)
        self.attn = ChannelAttention(dim, attn_reduction, attn_window)
        self.norm2 = LayerNorm2d(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.attn(self.ss2d(h) + self.local(h))
        return x + self.mlp(self.norm2(x))


def set_scan_backend(model: nn.Module, name: str) -> None:
    """Scan with backend ``name`` in every SS2D layer of ``model`` (``auto``, ``chunked``,
    ``triton``, ``mamba_ssm``, ``reference``, ``custom_op``: :mod:`nirstream.core.ops`)."""
    name = checked_backend(name)
    for module in model.modules():
        if isinstance(module, SS2D):
            module.scan_backend = name


@contextmanager
def use_scan_backend(model: nn.Module, name: str) -> Iterator[None]:
    """:func:`set_scan_backend` for the ``with`` block, each layer's own choice restored after it
    (an exporter's or a compiler's trace takes ``custom_op`` or ``chunked``, the model keeps its own)."""
    layers = [module for module in model.modules() if isinstance(module, SS2D)]
    before = [layer.scan_backend for layer in layers]
    set_scan_backend(model, name)
    try:
        yield
    finally:
        for layer, choice in zip(layers, before):
            layer.scan_backend = choice
