"""Shared launcher plumbing: CuPy access, device facts, dtype names and launching.

Owns the lazy CuPy import, the platform (cuda/hip), warp size and SM count of the
current device (cached per device), mapping CuPy storage dtypes to tessera dtype
names, and `launch` (get_kernel + call). Nothing here runs at import time.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import loader
from .registry import CTYPE

NULL = np.uint64(0)  # a null pointer argument (optional bias / gamma / err buffers)


def cp():
    from ...backend.cupy_source import cupy
    return cupy()


def _forget():
    _device_facts.cache_clear()
    _storage_tables.cache_clear()


@functools.lru_cache(maxsize=None)
def _device_facts(device_id: int):
    c = cp()
    props = c.cuda.runtime.getDeviceProperties(device_id)
    return {"platform": "hip" if c.cuda.runtime.is_hip else "cuda",
            "warp_size": int(props.get("warpSize", 32)),
            "sm_count": int(props.get("multiProcessorCount", 80)),
            "cc": int(props.get("major", 0)) * 10 + int(props.get("minor", 0)),
            "smem_optin": int(props.get("sharedMemPerBlockOptin") or props.get("sharedMemPerBlock", 48 * 1024)),
            # a device that runs kernel source on the CPU (tessera.sim): no native
            # binaries, no inline PTX; launchers route to the portable kernels
            "emulated": bool(props.get("tesseraEmulated", 0)),
            "name": props.get("name", b"?").decode() if isinstance(props.get("name"), bytes) else str(props.get("name"))}


def device_facts():
    return _device_facts(cp().cuda.Device().id)


@functools.lru_cache(maxsize=None)
def _storage_tables(cupy):
    """{tessera dtype name: CuPy storage dtype} and its inverse, as the CUDA backend
    stores them (bf16 natively where this CuPy has bfloat16 arrays, else uint16)."""
    from ... import dtypes as _dt
    from ...backend.cuda import cuda_storage
    by_name = {n: cuda_storage(_dt.get_dtype(n), cupy) for n in CTYPE}
    # storage -> dtype for arrays passed without a name: fp8 words are plain uint8
    inverse = {by_name[n]: n for n in reversed(list(by_name)) if not n.startswith("fp8")}
    inverse[np.dtype(np.uint8)] = "uint8"
    return by_name, inverse


def storage(dtype: str):
    """The CuPy dtype that stores tessera dtype `dtype` on the device."""
    return _storage_tables(cp())[0][dtype]


def dtype_name(arr, dtype: str | None = None) -> str:
    """The tessera dtype of a CuPy array: given explicitly (fp8, and bf16 on a CuPy
    without bfloat16, are stored as unsigned words, so their name must be passed),
    else read from the storage dtype."""
    by_name, inverse = _storage_tables(cp())
    if dtype is None:
        name = inverse.get(arr.dtype)
        if name is None:
            raise TypeError(f"[kernels] storage dtype {arr.dtype} has no tessera dtype")
        return name
    want = by_name.get(dtype)
    if want is None:
        raise TypeError(f"[kernels] unknown tessera dtype {dtype!r}; known: {', '.join(by_name)}")
    if want != arr.dtype:
        raise TypeError(f"[kernels] dtype {dtype} is stored as {want}, got an array of {arr.dtype}")
    return dtype


def empty(shape, dtype: str):
    return cp().empty(shape, dtype=storage(dtype))


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


def _register():
    from ...backend import cupy_source
    cupy_source.on_switch(_forget)


_register()
