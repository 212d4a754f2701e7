"""Timing one configuration: CUDA events on the GPU (no host sync inside the timed
region, one sync at the end), the host clock on the CPU; the outputs are
realized inside the timed region so deferred (lazily fused) work is counted.
Also: setting the OpenMP thread count of the generated C kernels at run time.
"""
from __future__ import annotations

import ctypes
import time

from ..tensor import Tensor

_gomp = None


def _libgomp():
    global _gomp
    if _gomp is None:
        try:
            _gomp = ctypes.CDLL("libgomp.so.1")
        except OSError:
            _gomp = False
    return _gomp or None


def set_threads(n):
    """Set the OpenMP thread count for the calling thread's next parallel regions
    (the generated C kernels use libgomp); returns the previous count, or None
    when libgomp is not available (then nothing changes)."""
    lib = _libgomp()
    if lib is None:
        return None
    prev = lib.omp_get_max_threads()
    lib.omp_set_num_threads(int(n))
    return prev


def _leaves(x):
    if type(x) is Tensor:
        return [x]
    if isinstance(x, (tuple, list)):
        return [t for e in x for t in _leaves(e)]
    if isinstance(x, dict):
        return [t for e in x.values() for t in _leaves(e)]
    return []


def _realize(out):
    from ..fusion.lazy import realize
    ts = _leaves(out)
    if ts:
        realize(*ts)
    return ts


def time_ms(call, device, reps=5, warmup=1):
    """Median milliseconds per call of `call()` on `device` (a tessera Device)."""
    for _ in range(warmup):  # compiles kernels and fills caches outside the timing
        _realize(call())
    if device.type != "cpu":
        from ..backend.cupy_source import cupy as _cupy
        cupy = _cupy()
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(reps):
            _realize(call())
        end.record()
        end.synchronize()
        return cupy.cuda.get_elapsed_time(start, end) / reps
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        _realize(call())
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]
