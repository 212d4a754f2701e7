"""The CPU backend: NumPy arrays as storage, ml_dtypes for bf16 and fp8.

Most ops run NumPy directly. Elementwise chains above `FUSE_MIN_SIZE` elements are
deferred and run as one generated C kernel (see `tessera.fusion`); below it the
lazy bookkeeping costs more than NumPy's few microseconds, so they run eagerly.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from .common import ArrayBackend


class CPUBackend(ArrayBackend):
    name = "cpu"

    # Fusion pays off once memory traffic dominates the ~10 us of Python spent
    # building and dispatching a fused group. Measured with benchmarks/fusion.py
    # (chain of 3 fp32 ops, 2 cores): break-even near 16K elements; 32K leaves margin.
    FUSE_MIN_SIZE = 32768

    def __init__(self):
        super().__init__(np)

    def storage_dtype(self, dtype):
        return dtype.np_storage

    def to_numpy(self, buf, dtype):
        return buf

    def from_numpy(self, arr, dtype):
        return arr

    def synchronize(self):
        pass


CPU_BACKEND = CPUBackend()
