"""CPU matrix products on the OpenMP thread pool of tessera's fused kernels.

NumPy's OpenBLAS has a thread pool of its own whose workers busy-wait for ~0.1 s
after every call. On a small machine they then take the cores from the OpenMP
workers of the fused C kernels (an MLP step measured 13 ms instead of 3 ms with
both pools at 2 threads), so tessera runs OpenBLAS single-threaded there
(`backend.cpu.set_blas_threads`) and parallelizes big 2-D products itself: one
OpenMP region in which each thread calls OpenBLAS's GEMM on a slab of the
output's rows or columns (`tessera/kernels/cpu/par_gemm.c`). One pool, one thread
per core, for GEMMs and fused kernels alike.

`matmul(a, b)` is a drop-in for `numpy.matmul` on 2-D arrays: it falls back to
NumPy for small products, other dtypes, strides BLAS cannot take, a BLAS that
already runs several threads, a single OpenMP thread, or when no C compiler or
no OpenBLAS CBLAS symbol is found.

    >>> import numpy as np
    >>> a = np.ones((64, 512), np.float32); b = np.ones((512, 256), np.float32)
    >>> bool((matmul(a, b) == 512).all())
    True
"""
from __future__ import annotations

import ctypes

import numpy as np

# Below this many multiply-adds one thread wins: the fork/join and the narrower
# slabs cost more than they save (measured on 2 cores: 64x256x256 gains 35%,
# 64x64x256 loses).
MIN_MACS = 1 << 21
# A slab narrower than this runs BLAS's edge code; not worth a thread.
MIN_SLAB = 32
# Rows per thread from which `matmul` splits the output by rows (see there).
ROW_SLAB = 64

# CBLAS GEMM symbols by preference, with the width of the BLAS integer: NumPy >= 2
# ships scipy-openblas64 (ILP64, suffixed names); older wheels a 32-bit one with
# plain names (an ILP64 build with unsuffixed names would be misread: none ships).
_SYMBOLS = (("scipy_cblas_{}gemm64_", 64), ("cblas_{}gemm64_", 64),
            ("scipy_cblas_{}gemm", 32), ("cblas_{}gemm", 32))

_state: list = []  # [] not yet looked up; [None] unavailable; [_Pool]


class _Pool:
    """The compiled launcher and the BLAS entry points, found once."""

    def __init__(self, lib, addr, bits):
        self.fns = {}
        for code, dt in (("s", np.float32), ("d", np.float64)):
            fn = getattr(lib, f"ts_par_{code}gemm")
            fn.argtypes = [ctypes.c_void_p] * 5
            fn.restype = None
            self.fns[np.dtype(dt)] = (fn, addr[code])
        self.max_threads = lib.ts_omp_max_threads
        self.max_threads.restype = ctypes.c_int
        self.bits = bits


def _find_blas():
    """({"s": address, "d": address}, integer bits) of NumPy's OpenBLAS CBLAS GEMMs."""
    from .cpu import loaded_libraries
    for lib in loaded_libraries("openblas"):
        for pattern, bits in _SYMBOLS:
            try:
                addr = {c: ctypes.cast(getattr(lib, pattern.format(c)), ctypes.c_void_p).value
                        for c in "sd"}
            except AttributeError:
                continue
            return addr, bits
    return None


def _pool():
    if _state:
        return _state[0]
    pool = None
    found = _find_blas()
    if found is not None:
        from .cpu_native import library
        prelude = "#define BLASINT int\n" if found[1] == 32 else ""
        lib = library("par_gemm", prelude, "ts_par_sgemm")
        if lib is not None:
            pool = _Pool(lib, found[0], found[1])
    _state.append(pool)
    return pool


def _blas_layout(x, itemsize):
    """(transposed, leading dimension) for a 2-D array BLAS can read in place, else None."""
    s0, s1 = x.strides
    r, c = x.shape
    if s1 == itemsize and s0 >= max(c, 1) * itemsize and s0 % itemsize == 0:
        return 0, s0 // itemsize
    if s0 == itemsize and s1 >= max(r, 1) * itemsize and s1 % itemsize == 0:
        return 1, s1 // itemsize
    return None


def threads_for(m, n, k):
    """How many threads `matmul` would use for an (m, k) @ (k, n) product (1: NumPy)."""
    if m * n * k < MIN_MACS:
        return 1
    pool = _pool()
    if pool is None:
        return 1
    from .cpu import cached_blas_threads
    if (cached_blas_threads() or 1) > 1:
        return 1  # OpenBLAS threads the call itself
    return max(1, min(pool.max_threads(), max(m, n) // MIN_SLAB))


def matmul(a, b, out=None):
    """`numpy.matmul(a, b[, out=out])` for 2-D arrays, split over the OpenMP pool
    when big. `out`: an (m, n) array of a's dtype whose rows are contiguous (a
    slab of a bigger buffer is fine); anything else goes to NumPy as given."""
    sa, sb = a.shape, b.shape
    if len(sa) != 2 or len(sb) != 2 or sa[0] * sa[1] * sb[1] < MIN_MACS \
            or a.dtype != b.dtype or sa[1] != sb[0]:
        return np.matmul(a, b, out=out)
    m, k = sa
    n = sb[1]
    pool = _state[0] if _state else _pool()
    if pool is None:
        return np.matmul(a, b, out=out)
    hit = pool.fns.get(a.dtype)
    if hit is None:
        return np.matmul(a, b, out=out)
    isz = a.dtype.itemsize
    la, lb = _blas_layout(a, isz), _blas_layout(b, isz)
    nt = threads_for(m, n, k)
    if out is None:
        c, ldc = np.empty((m, n), a.dtype), n
    else:
        c, lc = out, (_blas_layout(out, isz) if out.ndim == 2 and out.shape == (m, n)
                      and out.dtype == a.dtype else None)
        ldc = lc[1] if lc is not None and lc[0] == 0 else None
    if la is None or lb is None or ldc is None or nt < 2:
        return np.matmul(a, b, out=out)
    # Slabs of rows while each thread gets >= ROW_SLAB of them (each packs only its
    # rows of A), else of columns. Measured on 2 cores: (256x64)@(64x784) 146 us by
    # rows vs 171 by columns; (64x784)@(784x256) 185 by columns vs 236 by rows.
    by_cols = m < ROW_SLAB * nt
    dims = np.array([m, n, k, la[1], lb[1], ldc, la[0], lb[0], by_cols, nt], np.int64)
    fn, addr = hit
    fn(addr, dims.ctypes.data, a.ctypes.data, b.ctypes.data, c.ctypes.data)
    return c
