"""Overlapping tiles, run in batches, blended back with a smooth window so that no seam shows.

Large frames are cut into ``tile × tile`` tiles that overlap by at least ``overlap`` pixels;
the grid is deterministic: tiles evenly spaced, the first flush with the top/left border and
the last with the bottom/right. Each tile's output is weighted by a separable window that is
1 in its interior and rises as a raised cosine (Hann half-window) over the ``overlap`` pixels
at every edge it shares with a neighbour (not at the frame's border), and the weighted sum is
divided by the summed weights: the blend is a partition of unity, every pixel's weight is
positive, and a tile's outermost pixels, where its network saw reflected padding instead of
the real neighbourhood, count least.

A frame smaller than a tile is reflect-padded up to the tile and cropped after, so the
callable always sees one tile shape: compiled backends (CUDA graphs, TensorRT engines)
are built for that shape once. Pure torch, on whichever device the input is.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def tile_starts(size: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Starts of tiles of length ``tile`` covering ``size``: multiples of ``align``, first 0, last ``size - tile``.

    ``size - tile`` must be a multiple of ``align``. The fewest evenly spaced tiles whose
    neighbours overlap by at least ``overlap``.
    """
    if size <= tile:
        return [0]
    steps = (size - tile) // align
    count = math.ceil(steps / ((tile - overlap) // align)) + 1
    return [align * round(i * steps / (count - 1)) for i in range(count)]


def edge_window(starts: list[int], tile: int, overlap: int) -> Tensor:
    """``len(starts) × tile`` weights along one axis: Hann ramps over the overlap at inner edges.

    The ramp over ``n`` pixels is ``sin²(π (k + ½) / 2n)``, never 0, and a ramp up and the
    mirrored ramp down over the same pixels sum to exactly 1.
    """
    weights = torch.ones(len(starts), tile, dtype=torch.float64)
    for i, start in enumerate(starts):
        if i > 0:
            n = min(overlap, starts[i - 1] + tile - start)
            weights[i, :n] *= _ramp(n)
        if i < len(starts) - 1:
            n = min(overlap, start + tile - starts[i + 1])
            weights[i, tile - n :] *= _ramp(n).flip(0)
    return weights


def _ramp(n: int) -> Tensor:
    k = torch.arange(n, dtype=torch.float64)
    return torch.sin(math.pi * (k + 0.5) / (2 * n)) ** 2


def check_tiling(tile: int, overlap: int, align: int = 1) -> None:
    """Tiles must advance (overlap below the tile) and each ramp must fit in half a tile."""
    if tile <= 0 or not 0 <= overlap <= tile // 2:
        raise ValueError(f"tiling needs tile > 0 and 0 <= overlap <= tile / 2, got tile {tile}, overlap {overlap}")
    if not 1 <= align <= tile - overlap:
        raise ValueError(f"tile alignment {align} must be between 1 and tile - overlap ({tile - overlap})")


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one frame shape go and how much each pixel of each counts.

    ``pad`` is ``(left, right, top, bottom)``: the reflected canvas around the frame. ``weights`` (``tiles × 1 × tile_h × tile_w``, float32) are already divided by
    the summed weights, so blending is a weighted sum.
    """

    height: int
    width: int
    tile_h: int
    tile_w: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    pad: tuple[int, int, int, int]
    weights: Tensor

    @property
    def boxes(self) -> list[tuple[int, int]]:
        """``(y, x)`` of every tile, row by row (the order of ``weights``)."""
        return [(y, x) for y in self.ys for x in self.xs]


def plan_tiles(
    height: int,
    width: int,
    tile: int,
    overlap: int,
    device: torch.device,
    align: int = 1,
    phase: tuple[int, int] = (0, 0),
) -> TilePlan:
    """The tile grid for an ``height × width`` frame, with its normalised blending weights on ``device``.

    The frame is placed at ``phase`` (top, left) on a canvas whose tiles start at multiples
    of ``align``: a model with strided stages is not shift-invariant, and this puts every
    pixel at the same position in the stride pattern in every tile, as in whole-frame
    inference when ``phase`` is that inference's offset. The canvas around the frame is
    reflected, so it is at least one tile and its last tile is flush with its border.
    """
    check_tiling(tile, overlap, align)
    padded_h = tile + align * math.ceil(max(phase[0] + height - tile, 0) / align)
    padded_w = tile + align * math.ceil(max(phase[1] + width - tile, 0) / align)
    pad = (phase[1], padded_w - phase[1] - width, phase[0], padded_h - phase[0] - height)
    ys, xs = tile_starts(padded_h, tile, overlap, align), tile_starts(padded_w, tile, overlap, align)
    wy, wx = edge_window(ys, tile, overlap), edge_window(xs, tile, overlap)
    windows = wy[:, None, :, None] * wx[None, :, None, :]  # ny × nx × tile × tile
    total = torch.zeros(padded_h, padded_w, dtype=torch.float64)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            total[y : y + tile, x : x + tile] += windows[i, j]
    normalised = torch.stack(
        [windows[i, j] / total[y : y + tile, x : x + tile] for i, y in enumerate(ys) for j, x in enumerate(xs)]
    )
    weights = normalised.unsqueeze(1).to(device=device, dtype=torch.float32)
    return TilePlan(padded_h, padded_w, tile, tile, tuple(ys), tuple(xs), pad, weights)


class Tiler:
    """Runs a callable over overlapping tiles of ``B×C×H×W`` tensors, ``tile_batch`` tiles at a time.

    Plans are cached per frame shape and device, so a stream of equal frames plans once. With
    ``fixed_batch`` a short last batch is filled up with copies of its last tile (their outputs
    are dropped), so a compiled callable only ever sees one input shape.
    """

    def __init__(self, tile: int, overlap: int, tile_batch: int, align: int = 1, fixed_batch: bool = False) -> None:
        if tile_batch < 1:
            raise ValueError(f"tile_batch must be at least 1, got {tile_batch}")
        check_tiling(tile, overlap, align)
        self.tile, self.overlap, self.tile_batch, self.align = tile, overlap, tile_batch, align
        self.fixed_batch = fixed_batch
        self._plans: dict[tuple[int, int, tuple[int, int], torch.device], TilePlan] = {}

    def plan(self, height: int, width: int, device: torch.device, phase: tuple[int, int] = (0, 0)) -> TilePlan:
        key = (height, width, phase, device)
        if key not in self._plans:
            self._plans[key] = plan_tiles(height, width, self.tile, self.overlap, device, self.align, phase)
        return self._plans[key]

    def __call__(self, fn: Callable[[Tensor], Tensor], x: Tensor, phase: tuple[int, int] = (0, 0)) -> Tensor:
        """``fn`` applied tile by tile to ``x`` and blended: ``B×C_out×H×W`` float32.

        ``fn`` maps ``N×C×tile×tile`` to ``N×C_out×tile×tile`` (any float dtype); tiles of
        the ``B`` images are stacked along the batch dimension, position-major.
        """
        batch, _, height, width = x.shape
        plan = self.plan(height, width, x.device, phase)
        frames = _pad(x, plan.pad) if any(plan.pad) else x
        boxes = plan.boxes
        th, tw = plan.tile_h, plan.tile_w
        out: Tensor | None = None
        for first in range(0, len(boxes), self.tile_batch):
            chunk = boxes[first : first + self.tile_batch]
            filler = chunk[-1:] * (self.tile_batch - len(chunk)) if self.fixed_batch and len(boxes) > 1 else []
            result = fn(torch.cat([frames[..., y : y + th, x0 : x0 + tw] for y, x0 in chunk + filler]))
            result = result[: len(chunk) * batch]
            if out is None:
                out = result.new_zeros((batch, result.shape[1], plan.height, plan.width), dtype=torch.float32)
            result = result.float().reshape(len(chunk), batch, *result.shape[1:])
            for k, (y, x0) in enumerate(chunk):
                out[..., y : y + th, x0 : x0 + tw].addcmul_(result[k], plan.weights[first + k])
        assert out is not None  # a plan has at least one tile
        left, right, top, bottom = plan.pad
        return out[..., top : plan.height - bottom, left : plan.width - right]


def _pad(x: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
    """Reflect where the frame is large enough, replicate where it is smaller than the padding."""
    left, right, top, bottom = pad
    height, width = x.shape[-2:]
    mode = "reflect" if max(top, bottom) < height and max(left, right) < width else "replicate"
    return F.pad(x, pad, mode=mode)
