"""Kernels: the selective scan and its backends."""

from .scan_mamba_ssm import mamba_ssm_available
from .selective_scan import BACKENDS, resolve_backend, scan_backend, selective_scan

__all__ = ["BACKENDS", "mamba_ssm_available", "resolve_backend", "scan_backend", "selective_scan"]
