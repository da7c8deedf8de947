"""The mamba-ssm CUDA kernel, imported only when first asked for.

mamba-ssm loads its compiled CUDA extension at import time and fails on a CPU-only install,
so this module never imports it at load: :func:`mamba_ssm_available` tries once and remembers.
"""

from functools import cache

from torch import Tensor


@cache
def mamba_ssm_available() -> bool:
    """Whether ``mamba_ssm``'s selective-scan kernel imports (CUDA build present)."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # noqa: F401
    except Exception:  # ImportError, or OSError/RuntimeError from a broken CUDA extension
        return False
    return True


def scan_mamba_ssm(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
    D: Tensor | None, z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool,
) -> Tensor:
    """The fused kernel: applies bias, softplus, D and z itself. Tensors must be on CUDA."""
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    return selective_scan_fn(
        u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(),
        D=None if D is None else D.contiguous(),
        z=None if z is None else z.contiguous(),
        delta_bias=None if delta_bias is None else delta_bias.contiguous(),
        delta_softplus=delta_softplus,
    )
