"""What a forward pass costs in FLOPs, counted on the meta device (no memory, no compute).

``torch.utils.flop_counter.FlopCounterMode`` counts convolutions and matrix products. What it
cannot see, a layer reports itself through ``uncounted_flops(input_shape)`` (the model
contract, :mod:`.interface`): the selective scan's elementwise recurrence, estimated by each
SS2D layer from the shape it scans. The scan runs as its opaque custom op here, whose
shape-only implementation makes counting a 1080p frame of a 100M-parameter model take seconds.
"""

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .ss2d import SCAN_FLOPS_PER_UPDATE, set_scan_backend

__all__ = ["SCAN_FLOPS_PER_UPDATE", "forward_flops"]


def forward_flops(model: nn.Module, height: int, width: int, batch: int = 1) -> tuple[float, float]:
    """``(counted, uncounted)`` FLOPs of one forward on a ``batch×1×height×width`` input."""
    meta = copy.deepcopy(model).to("meta")
    set_scan_backend(meta, "custom_op")  # the scan as one node, whose FLOPs uncounted_flops reports
    uncounted = []

    def report(module: nn.Module, args: tuple, _output: torch.Tensor) -> None:
        uncounted.append(module.uncounted_flops(args[0].shape))

    hooks = [m.register_forward_hook(report) for m in meta.modules() if hasattr(m, "uncounted_flops")]
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            meta(torch.empty(batch, 1, height, width, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return float(counter.get_total_flops()), float(sum(uncounted))
