"""What a forward pass costs in FLOPs, counted on the meta device (no memory, no compute).

``torch.utils.flop_counter.FlopCounterMode`` counts convolutions and matrix products. It does
not see the selective scan's elementwise recurrence, so that is estimated beside it from the
shapes each SS2D layer scans, at :data:`SCAN_FLOPS_PER_UPDATE` per (channel, token, state).
The scan runs as its opaque custom op here, whose shape-only implementation makes counting a
1080p frame of a 100M-parameter model take seconds.
"""

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nirstream.core.ops import scan_backend

from .ss2d import DIRECTIONS, SS2D

SCAN_FLOPS_PER_UPDATE = 7  # exp(dt*A), dt*u*B, h = a*h + b, y += C*h: about 7 per (channel, token, state)


def forward_flops(model: nn.Module, height: int, width: int, batch: int = 1) -> tuple[float, float]:
    """``(counted, scan)`` FLOPs of one forward on a ``batch×1×height×width`` input."""
    meta = copy.deepcopy(model).to("meta")
    updates = []

    def count(module: SS2D, args: tuple, _output: torch.Tensor) -> None:
        b, _, h, w = args[0].shape  # the scan sees the map plus its border of padding tokens
        updates.append(b * DIRECTIONS * module.d_inner * (h + 2) * (w + 2) * module.d_state)

    hooks = [m.register_forward_hook(count) for m in meta.modules() if isinstance(m, SS2D)]
    try:
        with torch.inference_mode(), scan_backend("custom_op"), FlopCounterMode(display=False) as counter:
            meta(torch.empty(batch, 1, height, width, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return float(counter.get_total_flops()), float(sum(updates) * SCAN_FLOPS_PER_UPDATE)
