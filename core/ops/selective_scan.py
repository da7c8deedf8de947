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
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor

from nirstream.core.errors import ConfigError

from .scan_chunked import scan_chunked
from .scan_mamba_ssm import mamba_ssm_available, scan_mamba_ssm
from .scan_op import selective_scan_op
from .scan_reference import scan_reference
from .scan_triton import scan_triton, triton_available

BACKENDS = ("auto", "reference", "chunked", "triton", "mamba_ssm", "custom_op")
_default_backend = "auto"


def set_scan_backend(name: str) -> None:
    """Choose the backend used when :func:`selective_scan` is called without one."""
    global _default_backend
    _default_backend = _checked(name)


@contextmanager
def scan_backend(name: str) -> Iterator[None]:
    """Use ``name`` as the default backend inside a ``with`` block."""
    previous = _default_backend
    set_scan_backend(name)
    try:
        yield
    finally:
        set_scan_backend(previous)


def resolve_backend(name: str, device: torch.device) -> str:
    """The concrete backend ``name`` means for tensors on ``device``."""
    name = _checked(name)
    if name == "auto":
        if device.type == "cuda" and mamba_ssm_available():
            return "mamba_ssm"
        return "triton" if device.type == "cuda" and triton_available() else "chunked"
    if name == "mamba_ssm" and not (device.type == "cuda" and mamba_ssm_available()):
        raise ConfigError(
            "scan backend 'mamba_ssm' needs CUDA tensors and the mamba-ssm package "
            "(pip install 'nirstream[cuda]'); use 'auto' or 'chunked'"
        )
    if name == "triton" and not _triton_runs_on(device):
        raise ConfigError(
            "scan backend 'triton' needs CUDA tensors and the triton package "
            "(or TRITON_INTERPRET=1 to run it slowly on the CPU); use 'auto' or 'chunked'"
        )
    return name


def _triton_runs_on(device: torch.device) -> bool:
    """Triton compiles for CUDA; on the CPU only its interpreter (TRITON_INTERPRET=1, tests) runs kernels."""
    on_device = device.type == "cuda" or (device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")
    return on_device and triton_available()


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
    backend: str | None = None,
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
    name = resolve_backend(backend or _default_backend, u.device)
    if name == "custom_op":
        return selective_scan_op(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    # Autocast off, so nothing inside is cast down; meta tensors (shape inference) have no autocast.
    guard = torch.autocast(u.device.type, enabled=False) if u.device.type != "meta" else nullcontext()
    with guard:
        u, delta, A, B, C = (t.to(dtype) for t in (u, delta, A, B, C))
        D, z, delta_bias = (None if t is None else t.to(dtype) for t in (D, z, delta_bias))
        if name == "mamba_ssm":
            return scan_mamba_ssm(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
        if delta_bias is not None:
            delta = delta + delta_bias.unsqueeze(-1)
        if delta_softplus:
            delta = F.softplus(delta)
        scan = {"reference": scan_reference, "chunked": scan_chunked, "triton": scan_triton}[name]
        y = scan(u, delta, A, B, C)
        if D is not None:
            y = y + D.unsqueeze(-1) * u
        if z is not None:
            y = y * F.silu(z)
        return y


def _checked(name: str) -> str:
    if name not in BACKENDS:
        raise ConfigError(f"unknown scan backend '{name}'; allowed: {', '.join(BACKENDS)}")
    return name
