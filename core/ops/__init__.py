"""Kernels: the selective scan and its backends."""

from .scan_mamba_ssm import mamba_ssm_available
from .selective_scan import BACKENDS, checked_backend, resolve_backend, selective_scan

__all__ = ["BACKENDS", "checked_backend", "mamba_ssm_available", "resolve_backend", "selective_scan"]
