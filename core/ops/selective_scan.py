"""The selective scan behind one function, with interchangeable backends.

Semantics follow mamba-ssm's ``selective_scan_fn``: for each channel ``d`` and state ``n``,
``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t`` and ``y_t = C_t . h_t + D u_t``, gated by
``silu(z)`` when ``z`` is given. Backends:

- ``reference``: sequential, the oracle (:mod:`.scan_reference`);
- ``chunked``: parallel pure PyTorch, CPU/GPU, exportable (:mod:`.scan_chunked`);
- ``triton``: a Triton kernel, forward and backward, for CUDA without mamba-ssm (:mod:`.scan_triton`);
- ``mamba_ssm``: the CUDA kernel when the package imports (:mod:`.scan_mamba_ssm`);
- ``custom_op``: the scan as one opaque custom op for graph compilers (:mod:`.scan_op`), which
  runs ``auto`` inside;
- ``auto``: for CUDA tensors ``mamba_ssm`` when it imports, else ``triton`` when it imports,
  else ``chunked``; ``chunked`` elsewhere.

The recurrence always runs in fp32, also under fp16/bf16 autocast: long products of decays
lose too much precision in half types.

A call names its backend (``backend=``, ``auto`` by default). A model's choice is visible on
the model: each :class:`~nirstream.core.models.ss2d.SS2D` layer has a ``scan_backend``
attribute (:func:`~nirstream.core.models.ss2d.set_scan_backend`), as mamba-ssm's
``Mamba(use_fast_path=...)`` has; nothing is read from an ambient context.
"""

from torch import Tensor

from .scan_eager import BACKENDS, checked_backend, resolve_backend, scan_eager
from .scan_op import selective_scan_op

__all__ = ["BACKENDS", "checked_backend", "resolve_backend", "selective_scan"]


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    *,
    backend: str = "auto",
) -> Tensor:
    """Run the selective scan.

    Shapes: u, delta, z ``(b, d, l)``; A ``(d, n)`` (real, negative for a stable scan);
    B, C ``(b, n, l)`` or grouped ``(b, g, n, l)`` with ``g`` dividing ``d``; D, delta_bias
    ``(d,)``. Returns ``(b, d, l)`` in fp32 (u's dtype if u is fp64).
    """
    if B.dim() == 3:
        B, C = B.unsqueeze(1), C.unsqueeze(1)
    if u.shape[1] % B.shape[1]:
        raise ValueError(f"{u.shape[1]} channels do not split into {B.shape[1]} groups of B/C")
    name = resolve_backend(backend, u.device)
    if name == "custom_op":
        return selective_scan_op(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return scan_eager(name, u, delta, A, B, C, D, z, delta_bias, delta_softplus)
