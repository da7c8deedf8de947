"""The selective scan as one opaque custom op, ``torch.ops.nirstream.selective_scan``.

Graph compilers see the scan as a single node whose output shape they know (the fake
implementation) and never trace into its loops: ``torch.compile`` calls it without a graph
break, and TensorRT, which has no converter for it, leaves just this node to PyTorch while it
compiles everything around it. At run time the op calls the fastest eager backend for the
device (mamba-ssm, Triton or chunked). Inference only: it has no autograd formula.
"""

import torch
from torch import Tensor

from .scan_eager import scan_eager


@torch.library.custom_op("nirstream::selective_scan", mutates_args=())
def selective_scan_op(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
) -> Tensor:
    return scan_eager("auto", u, delta, A, B, C, D, z, delta_bias, delta_softplus)


@selective_scan_op.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus):  # noqa: ANN001, ANN202 (fixed by the op schema)
    return u.new_empty(u.shape, dtype=torch.float64 if u.dtype == torch.float64 else torch.float32)
