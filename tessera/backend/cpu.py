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
from .._config import env_choice


def _openmp_defaults(env=os.environ):
    """libgomp reads these once, when it is loaded (by the first fused kernel, or by
    another library first: torch). The OpenMP pool runs both the fused kernels and
    the big GEMMs (`cpu_gemm`), so its workers should stay awake across the gaps of
    a training step (tens of microseconds of Python between kernels) but not much
    longer, or they take a core from other processes. libgomp's default spin of
    300000 iterations keeps a worker busy ~4 ms after each region here; 60000
    (~1.5 ms) still bridges the gaps.
    Measured (benchmarks/autodiff.py, 2 cores): PASSIVE waits made the MLP step
    1.85 ms, spinning 1.39 ms. A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT wins."""
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["GOMP_SPINCOUNT"] = str(SPIN_COUNT)


SPIN_COUNT = 60000

# Freed NumPy buffers go back to glibc; above the mmap threshold (128 KB, adapted
# upwards as blocks are freed) and whenever the heap's free top exceeds the trim
# threshold, glibc returns the pages to the kernel, and the next buffer of that size
# pays a page fault per 4 KB page at first touch. Eager tensor code frees and
# reallocates temporaries all the time: measured on this VM, `a * 0.9 + b` on
# 256x256 fp32 took 270 us with glibc's defaults and 21 us with these, and the
# MLP's GEMM outputs 30-40% longer. Keeping up to MALLOC_KEEP_MB of freed memory in
# the process is the price (as with PyTorch's recommended jemalloc/tcmalloc).
MMAP_THRESHOLD = 32 << 20   # glibc's maximum on 64-bit
MALLOC_KEEP_MB = 256


def _tune_malloc(env=os.environ):
    """Raise glibc's mmap and trim thresholds (Linux/glibc only; a user's
    MALLOC_*_ or GLIBC_TUNABLES settings win, TESSERA_MALLOC_TUNING=0 opts out).
    Returns True when applied."""
    if env_choice("TESSERA_MALLOC_TUNING", "1", ("0", "1")) == "0" or "GLIBC_TUNABLES" in env \
            or any(k.startswith("MALLOC_") for k in env):
        return False
    import platform
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    ok = libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD)
    ok &= libc.mallopt(m_trim_threshold, MALLOC_KEEP_MB << 20)
    return bool(ok)


def _openmp_serial_after_fork():
    """In a forked child: run OpenMP regions on one thread. libgomp is not
    fork-safe: the child inherits a pool whose worker threads did not survive the
    fork, and its first parallel region (a fused kernel, a pooled GEMM) would wait
    for them forever. torch does the same in its DataLoader workers. Every libgomp
    the process loaded (torch ships its own) is set; none loaded: nothing to do."""
    for lib in loaded_libraries("libgomp"):
        try:
            lib.omp_set_num_threads(1)
        except AttributeError:
            pass


_openmp_defaults()
MALLOC_TUNED = _tune_malloc()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_openmp_serial_after_fork)
from .common import ArrayBackend
from .cpu_gemm import matmul as _pool_matmul, threads_for


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

    def matmul(self, a, b, dtype):
        if dtype in (_dt.fp32, _dt.fp64) and a.dtype == b.dtype == dtype.np_storage:
            # big products on the fused kernels' OpenMP pool (see cpu_gemm)
            if a.ndim == 2 and b.ndim == 2:
                return _pool_matmul(a, b)
            if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
                # (..., M, K) @ (K, N): one GEMM over the folded leading axes
                r = _pool_matmul(a.reshape(-1, a.shape[-1]), b)
                return r.reshape(a.shape[:-1] + b.shape[1:])
            if a.ndim > 2 and a.shape[:-2] == b.shape[:-2] \
                    and threads_for(a.shape[-2], b.shape[-1], a.shape[-1]) > 1:
                out = np.empty(a.shape[:-1] + b.shape[-1:], a.dtype)
                for i in np.ndindex(a.shape[:-2]):  # big matrices, batch by batch
                    _pool_matmul(a[i], b[i], out=out[i])
                return out
        return super().matmul(a, b, dtype)

    def gemm_into(self, a, b, out):
        return _pool_matmul(a, b, out=out)


_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                 "openblas_set_num_threads64_", "openblas_set_num_threads")
_blas = []  # [(set, get)] once looked up; [] not yet, [None] no OpenBLAS found


def loaded_libraries(fragment):
    """ctypes handles of the shared libraries this process has loaded whose path
    contains `fragment` (case-insensitive), found through /proc/self/maps as
    threadpoolctl does; [] where that file does not exist (not Linux)."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f if fragment in ln.lower()})
    except OSError:
        return []
    libs = []
    for path in paths:
        try:
            # already loaded: the same handle (RTLD_NOLOAD: never load another copy)
            libs.append(ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0)))
        except OSError:
            continue
    return libs


def _openblas():
    """(set_num_threads, get_num_threads) of the OpenBLAS NumPy loaded, or None
    (another BLAS, or not Linux): found through /proc/self/maps, as threadpoolctl does."""
    if _blas:
        return _blas[0]
    fns = None
    for lib in loaded_libraries("openblas"):
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
    n = int(fns[1]())
    _threads_seen[:] = [n]
    return n


_threads_seen: list = []  # the count blas_threads() last read, for `cached_blas_threads`


def cached_blas_threads():
    """`blas_threads()` without the call into OpenBLAS (read per GEMM by `cpu_gemm`):
    the count last read or set through this module. Set it with `set_blas_threads`."""
    return _threads_seen[0] if _threads_seen else blas_threads()


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
    _threads_seen[:] = [n]
    return prev


def _n_cpus():
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may run on
    except AttributeError:
        return os.cpu_count() or 1


def _default_thread_budget():
    env = os.environ
    if "TESSERA_BLAS_THREADS" in env:
        from .._config import env_number
        n = env_number("TESSERA_BLAS_THREADS", 1, int, 1)
    elif "OPENBLAS_NUM_THREADS" in env or "OMP_NUM_THREADS" in env or _n_cpus() > 2:
        return  # the user's (or OpenBLAS's) choice
    else:
        n = 1
    set_blas_threads(n)


CPU_BACKEND = CPUBackend()
_default_thread_budget()
