"""The CPU backend: NumPy arrays as storage, ml_dtypes for bf16 and fp8.

Most ops run NumPy directly. Elementwise chains above `FUSE_MIN_SIZE` elements are
deferred and run as one generated C kernel (see `tessera.fusion`); below it the
lazy bookkeeping costs more than NumPy's few microseconds, so they run eagerly.

Also owns the CPU thread budget of NumPy's BLAS (`blas_threads`,
`set_blas_threads`): OpenBLAS worker threads busy-wait for ~0.1 s after every
call, so on a 2-core machine the second worker takes a whole core from the
Python thread and the fused kernels' OpenMP threads whenever anything else runs.
Measured (MLP step of benchmarks/autodiff.py, 2 cores, one core busy elsewhere):
75-80 ms with 2 BLAS threads, 3.0-3.8 ms with 1. With at most 2 CPUs tessera
therefore sets 1 BLAS thread at import unless the user chose (OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS or TESSERA_BLAS_THREADS in the environment).

    >>> from tessera.backend.cpu import blas_threads, set_blas_threads
    >>> prev = set_blas_threads(1)
    >>> blas_threads() in (1, None)
    True
    >>> _ = set_blas_threads(prev) if prev else None
"""
from __future__ import annotations

import ctypes
import os

import numpy as np

from .. import dtypes as _dt

# libgomp reads its wait policy once, when it is loaded. tessera.fusion.compile_c
# sets PASSIVE (its measurement: spinning OpenMP workers take the cores from the
# BLAS calls that follow); set here too, at `import tessera`, so that it holds when
# another library loads libgomp before the first fused kernel does (torch does, and
# its libgomp is then the one the kernels use: MLP step 32 ms -> 3-5 ms under load).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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


_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                 "openblas_set_num_threads64_", "openblas_set_num_threads")
_blas = []  # [(set, get)] once looked up; [] not yet, [None] no OpenBLAS found


def _openblas():
    """(set_num_threads, get_num_threads) of the OpenBLAS NumPy loaded, or None
    (another BLAS, or not Linux): found through /proc/self/maps, as threadpoolctl does."""
    if _blas:
        return _blas[0]
    fns = None
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle
        except OSError:
            continue
        for name in _BLAS_SETTERS:
            if hasattr(lib, name):
                get = getattr(lib, name.replace("set_num", "get_num"), None)
                fns = (getattr(lib, name), get)
                break
        if fns:
            break
    _blas.append(fns)
    return fns


def blas_threads():
    """The thread count of NumPy's OpenBLAS, or None when it is not OpenBLAS."""
    fns = _openblas()
    if fns is None or fns[1] is None:
        return None
    fns[1].restype = ctypes.c_int
    return int(fns[1]())


def set_blas_threads(n):
    """Set the thread count of NumPy's OpenBLAS (tessera's CPU matmuls); returns the
    previous count, or None when NumPy's BLAS is not OpenBLAS (nothing changes)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        from ..errors import TesseraError
        raise TesseraError(f"[set_blas_threads] expects a positive int, got {n!r}")
    fns = _openblas()
    if fns is None:
        return None
    prev = blas_threads()
    fns[0].argtypes = [ctypes.c_int]
    fns[0](n)
    return prev


def _n_cpus():
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may run on
    except AttributeError:
        return os.cpu_count() or 1


def _default_thread_budget():
    env = os.environ
    if "TESSERA_BLAS_THREADS" in env:
        n = int(env["TESSERA_BLAS_THREADS"])
    elif "OPENBLAS_NUM_THREADS" in env or "OMP_NUM_THREADS" in env or _n_cpus() > 2:
        return  # the user's (or OpenBLAS's) choice
    else:
        n = 1
    set_blas_threads(n)


CPU_BACKEND = CPUBackend()
_default_thread_budget()
