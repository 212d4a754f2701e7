"""Shared launcher plumbing: CuPy access, device facts, dtype names and launching.

Owns the lazy CuPy import, the platform (cuda/hip), warp size and SM count of the
current device (cached per device), mapping CuPy storage dtypes to tessera dtype
names, and `launch` (get_kernel + call). Nothing here runs at import time.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import loader
from .registry import STORAGE

NULL = np.uint64(0)  # a null pointer argument (optional bias / gamma / err buffers)

_FROM_STORAGE = {"float64": "fp64", "float32": "fp32", "float16": "fp16", "uint16": "bf16",
                 "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
                 "uint8": "uint8", "bool": "bool"}


def cp():
    from ...backend.cupy_source import cupy
    return cupy()


@functools.lru_cache(maxsize=None)
def _device_facts(device_id: int):
    c = cp()
    props = c.cuda.runtime.getDeviceProperties(device_id)
    return {"platform": "hip" if c.cuda.runtime.is_hip else "cuda",
            "warp_size": int(props.get("warpSize", 32)),
            "sm_count": int(props.get("multiProcessorCount", 80)),
            "cc": int(props.get("major", 0)) * 10 + int(props.get("minor", 0)),
            "name": props.get("name", b"?").decode() if isinstance(props.get("name"), bytes) else str(props.get("name"))}


def device_facts():
    return _device_facts(cp().cuda.Device().id)


def dtype_name(arr, dtype: str | None = None) -> str:
    """The tessera dtype of a CuPy array: given explicitly (bf16/fp8 are stored as
    uint16/uint8 words, so their name must be passed), else read from the storage dtype."""
    storage = str(arr.dtype)
    if dtype is None:
        if storage not in _FROM_STORAGE:
            raise TypeError(f"[kernels] storage dtype {storage} has no tessera dtype")
        return _FROM_STORAGE[storage]
    if dtype not in STORAGE:
        raise TypeError(f"[kernels] unknown tessera dtype {dtype!r}; known: {', '.join(STORAGE)}")
    if STORAGE[dtype] != storage:
        raise TypeError(f"[kernels] dtype {dtype} is stored as {STORAGE[dtype]}, got an array of {storage}")
    return dtype


def empty(shape, dtype: str):
    return cp().empty(shape, dtype=STORAGE[dtype])


def require_contiguous(op: str, *arrays):
    for a in arrays:
        if a is not None and not a.flags.c_contiguous:
            raise ValueError(f"[{op}] expects C-contiguous arrays (got strides {a.strides} for shape "
                             f"{a.shape}); make them contiguous with permute_copy first")


def launch(file_name: str, name: str, grid, block, args, shared_mem: int = 0):
    fn = loader.get_kernel(file_name, name)
    fn(tuple(grid), tuple(block), tuple(args), shared_mem=shared_mem)


def i64(v) -> np.int64:
    return np.int64(v)
