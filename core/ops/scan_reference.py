"""Sequential selective scan: one step per token, the correctness oracle for the fast backends."""

import torch
from torch import Tensor


def scan_reference(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """``h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t``, ``y_t = <C_t, h_t>``, step by step.

    Shapes: u, delta ``(b, d, l)``; A ``(d, n)``; B, C ``(b, g, n, l)`` with ``g`` dividing ``d``.
    Returns y ``(b, d, l)``. All inputs fp32; softplus, bias, D and z are applied by the caller.
    """
    b, d, length = u.shape
    g, n = B.shape[1], A.shape[1]
    # Expand the group dimension so each channel sees its group's B and C: (b, d, l, n).
    B_ch = B.repeat_interleave(d // g, dim=1).transpose(-1, -2)
    C_ch = C.repeat_interleave(d // g, dim=1).transpose(-1, -2)
    decay = torch.exp(delta.unsqueeze(-1) * A.unsqueeze(1))
    inputs = (delta * u).unsqueeze(-1) * B_ch
    h = u.new_zeros(b, d, n)
    ys = []
    for t in range(length):
        h = decay[:, :, t] * h + inputs[:, :, t]
        ys.append((h * C_ch[:, :, t]).sum(-1))
    return torch.stack(ys, dim=-1)
