"""The eager scan backends behind one call: which one runs where, and the shared epilogue.

:func:`scan_eager` runs a named backend (``reference``, ``chunked``, ``triton``, ``mamba_ssm``,
or ``auto`` for the fastest one the device has) in fp32 with autocast off, and applies what
every backend shares: the step-size bias and softplus, the ``D`` skip and the ``z`` gate. Both
:func:`~.selective_scan.selective_scan` and the custom op (:mod:`.scan_op`) call it, so neither
imports the other.
"""

import os
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor

from nirstream.core.errors import ConfigError

from .scan_chunked import scan_chunked
from .scan_mamba_ssm import mamba_ssm_available, scan_mamba_ssm
from .scan_reference import scan_reference
from .scan_triton import scan_triton, triton_available

BACKENDS = ("auto", "reference", "chunked", "triton", "mamba_ssm", "custom_op")


def resolve_backend(name: str, device: torch.device) -> str:
    """The concrete backend ``name`` means for tensors on ``device``."""
    name = checked_backend(name)
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


def checked_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ConfigError(f"unknown scan backend '{name}'; allowed: {', '.join(BACKENDS)}")
    return name


def _triton_runs_on(device: torch.device) -> bool:
    """Triton compiles for CUDA; on the CPU only its interpreter (TRITON_INTERPRET=1, tests) runs kernels."""
    on_device = device.type == "cuda" or (device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")
    return on_device and triton_available()


def scan_eager(
    name: str,
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
    """The scan on backend ``name`` (not ``custom_op``), B and C grouped ``(b, g, n, l)``; fp32 out."""
    name = resolve_backend(name, u.device)
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
