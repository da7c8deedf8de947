"""Chunked selective scan in pure PyTorch: fast on the CPU, runs on any device, traceable.

The sequence is cut into blocks that fit in cache. Inside a block, sub-chunks of ``CHUNK``
tokens are scanned side by side (one vectorised step per position in a sub-chunk), then the
state at each sub-chunk's end is carried across sub-chunks, and each sub-chunk adds the carried
state times its cumulative decay. Every factor is a product of decays in (0, 1], so unlike a
cumsum-of-logs formulation nothing can overflow, whatever delta and A are.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

CHUNK = 16  # tokens per sub-chunk: the length of the vectorised inner loop
BLOCK = 512  # tokens per block: keeps the (block, d, n) working set in cache


def scan_chunked(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """Same contract as :func:`scan_reference`; exact up to float rounding."""
    b, d, length = u.shape
    g, n = B.shape[1], A.shape[1]
    pad = -length % CHUNK
    if pad:  # delta = 0 gives decay 1 and input 0: padded tokens leave the state alone
        u, delta = F.pad(u, (0, pad)), F.pad(delta, (0, pad))
        B, C = F.pad(B, (0, pad)), F.pad(C, (0, pad))
    state = u.new_zeros(b, d, n)
    ys = []
    for start in range(0, length + pad, BLOCK):
        stop = min(start + BLOCK, length + pad)
        y, state = _scan_block(
            u[..., start:stop], delta[..., start:stop], A,
            B[..., start:stop], C[..., start:stop], state, g,
        )
        ys.append(y)
    return torch.cat(ys, dim=-1)[..., :length]


def _scan_block(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, state: Tensor, groups: int
) -> tuple[Tensor, Tensor]:
    b, d, length = u.shape
    n = A.shape[1]
    chunks = length // CHUNK
    shape = (b, groups, d // groups, chunks, CHUNK, n)  # channels split by their B/C group

    def per_group(x: Tensor) -> Tensor:  # (b, g, n, l) -> contiguous, broadcastable to ``shape``
        return x.transpose(-1, -2).contiguous().reshape(b, groups, 1, chunks, CHUNK, n)

    log_decay = (delta.unsqueeze(-1) * A.unsqueeze(1)).reshape(b, d, chunks, CHUNK, n)
    decay = torch.exp(log_decay)
    inputs = ((delta * u).reshape(*shape[:-1], 1) * per_group(B)).reshape(b, d, chunks, CHUNK, n)

    # 1. Scan every sub-chunk from a zero state, all sub-chunks at once. The loops take their
    # steps with unbind, not indexing: the backward of one unbind is one stack, while each
    # index's backward fills a zero tensor of the whole block (half of a training step's time).
    steps_in, steps_decay = inputs.unbind(3), decay.unbind(3)
    h = steps_in[0]
    local = [h]
    for t in range(1, CHUNK):
        h = torch.addcmul(steps_in[t], steps_decay[t], h)
        local.append(h)
    local_states = torch.stack(local, dim=3)
    # exp of a cumsum of non-positive logs: a product of decays, never above 1; unlike cumprod
    # it exports to ONNX (CumSum).
    cum_decay = torch.exp(torch.cumsum(log_decay, dim=3))

    # 2. Carry the true state across sub-chunk boundaries.
    carried = []
    for last_local, last_decay in zip(h.unbind(2), cum_decay[:, :, :, -1].unbind(2)):
        carried.append(state)
        state = torch.addcmul(last_local, last_decay, state)
    incoming = torch.stack(carried, dim=2).unsqueeze(3)

    # 3. Add each sub-chunk's decayed incoming state and read out through C.
    states = torch.addcmul(local_states, cum_decay, incoming)
    y = (states.reshape(shape) * per_group(C)).sum(-1)
    return y.reshape(b, d, length), state
