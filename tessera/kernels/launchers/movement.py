"""Launchers for transpose.cu, gather.cu and cast.cu: permute/copy, gathers,
scatter-adds and dtype casts on CuPy arrays.

Index errors are detected on the device (an int32 flag) and raised here as
IndexError after the launch (`check=False` skips the synchronising read).
"""
from __future__ import annotations

import numpy as np

from . import _runtime as rt
from .geometry import elementwise_geometry, transpose_geometry
from .registry import BYTES_TYPE, ITEMSIZE, SCATTER_DTYPES, cast_name

MAX_DIMS = 8
_LAYOUT = np.dtype([("ndim", np.int64), ("shape", np.int64, (MAX_DIMS,)), ("stride", np.int64, (MAX_DIMS,))])


def collapse_dims(shape, strides):
    """Merge adjacent axes that are contiguous with each other and drop size-1 axes:
    fewer dims means less index arithmetic per element. Strides in elements."""
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    out: list = []
    for n, s in dims:
        if out and out[-1][1] == s * n:
            out[-1] = (out[-1][0] * n, s)
        else:
            out.append((n, s))
    return [n for n, _ in out] or [1], [s for _, s in out] or [1]


def strided_layout(shape, strides):
    shape, strides = collapse_dims(shape, strides)
    if len(shape) > MAX_DIMS:
        raise ValueError(f"[permute_copy] {len(shape)} non-mergeable dims exceed the kernel limit of {MAX_DIMS}")
    rec = np.zeros((), _LAYOUT)
    rec["ndim"] = len(shape)
    rec["shape"][:len(shape)] = shape
    rec["stride"][:len(strides)] = strides
    rec["shape"][len(shape):] = 1
    return rec[()]  # a numpy.void: CuPy passes it to the kernel as the struct, by value


def permute_copy(x, perm=None, *, dtype: str | None = None):
    """A contiguous copy of x.transpose(perm) (perm=None: just make x contiguous).
    Swapping the last two axes of a contiguous array uses the shared-memory tiled
    transpose; anything else (any strides, broadcast stride 0) the strided copy."""
    dt = rt.dtype_name(x, dtype)
    perm = tuple(range(x.ndim)) if perm is None else tuple(p % max(x.ndim, 1) for p in perm)
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"[permute_copy] {perm} is not a permutation of {x.ndim} axes")
    shape = tuple(x.shape[p] for p in perm)
    out = rt.empty(shape, dt)
    if out.size == 0:
        return out
    size = ITEMSIZE[dt]
    T = BYTES_TYPE[size]
    swap_last = x.ndim >= 2 and perm == tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    if swap_last and x.flags.c_contiguous:
        R, C = x.shape[-2], x.shape[-1]
        batch = x.size // (R * C)
        grid, block = transpose_geometry(batch, R, C)
        rt.launch("transpose.cu", f"transpose_tiled<{T},32,8>", grid, block, (x, out, rt.i64(batch), rt.i64(R), rt.i64(C)))
        return out
    strides = [x.strides[p] // size for p in perm]
    grid, block = elementwise_geometry(out.size)
    rt.launch("transpose.cu", f"strided_copy<{T}>", grid, block,
              (x, out, rt.i64(out.size), strided_layout(shape, strides)))
    return out


def _err_buffer(check):
    return rt.cp().zeros((1,), dtype=np.int32) if check else None


def _raise_if(err, op, what):
    if err is not None and int(err.get()[0]):
        raise IndexError(f"[{op}] index out of range for {what}")


def _flat_index(op, idx):
    if str(idx.dtype) != "int64" or idx.ndim != 1 or not idx.flags.c_contiguous:
        raise TypeError(f"[{op}] indices must be a contiguous 1-D int64 array, got {idx.shape} {idx.dtype}")


def index_select(x, idx, axis: int, *, dtype: str | None = None, check: bool = True):
    """numpy.take(x, idx, axis) for contiguous x and 1-D int64 idx (negatives wrap)."""
    dt = rt.dtype_name(x, dtype)
    rt.require_contiguous("index_select", x)
    _flat_index("index_select", idx)
    axis %= x.ndim
    outer, L = int(np.prod(x.shape[:axis])), x.shape[axis]
    inner = int(np.prod(x.shape[axis + 1:]))
    out = rt.empty(x.shape[:axis] + (idx.size,) + x.shape[axis + 1:], dt)
    if out.size == 0:
        return out
    err = _err_buffer(check)
    rt.launch("gather.cu", f"index_select<{BYTES_TYPE[ITEMSIZE[dt]]}>", *elementwise_geometry(out.size),
              (x, idx, out, rt.i64(outer), rt.i64(L), rt.i64(inner), rt.i64(idx.size),
               rt.NULL if err is None else err))
    _raise_if(err, "index_select", f"axis {axis} of length {L}")
    return out


def gather(x, offsets, *, dtype: str | None = None, check: bool = True):
    """out[i] = x.ravel()[offsets[i]]: advanced indexing once tessera has folded the
    index arrays into flat element offsets (int64, 1-D)."""
    dt = rt.dtype_name(x, dtype)
    rt.require_contiguous("gather", x)
    _flat_index("gather", offsets)
    out = rt.empty(offsets.shape, dt)
    if out.size == 0:
        return out
    err = _err_buffer(check)
    rt.launch("gather.cu", f"gather_flat<{BYTES_TYPE[ITEMSIZE[dt]]}>", *elementwise_geometry(out.size),
              (x, offsets, out, rt.i64(out.size), rt.i64(x.size), rt.NULL if err is None else err))
    _raise_if(err, "gather", f"an array of {x.size} elements")
    return out


def scatter_add(dst, idx, src, axis: int | None = None, *, dtype: str | None = None, check: bool = True):
    """In place, duplicates accumulating (numpy.add.at): with axis=None, idx holds flat
    element offsets into dst and src is 1-D; otherwise dst[..., idx[j], ...] += src[..., j, ...]
    along `axis` (the adjoint of index_select). Returns dst."""
    dt = rt.dtype_name(dst, dtype)
    if dt not in SCATTER_DTYPES:
        raise TypeError(f"[scatter_add] dtype {dt} not supported; supported: {', '.join(SCATTER_DTYPES)}")
    rt.require_contiguous("scatter_add", dst, src)
    _flat_index("scatter_add", idx)
    if src.dtype != dst.dtype:
        raise TypeError(f"[scatter_add] src dtype {src.dtype} differs from dst dtype {dst.dtype}")
    from .registry import CTYPE
    err = _err_buffer(check)
    e = rt.NULL if err is None else err
    if axis is None:
        if src.shape != idx.shape:
            raise ValueError(f"[scatter_add] src shape {src.shape} must equal index shape {idx.shape}")
        if src.size == 0:
            return dst
        rt.launch("gather.cu", f"scatter_add_flat<{CTYPE[dt]}>", *elementwise_geometry(src.size),
                  (dst, idx, src, rt.i64(src.size), rt.i64(dst.size), e))
    else:
        axis %= dst.ndim
        want = dst.shape[:axis] + (idx.size,) + dst.shape[axis + 1:]
        if src.shape != want:
            raise ValueError(f"[scatter_add] src shape {src.shape} must be {want} for axis {axis}")
        if src.size == 0:
            return dst
        outer, L = int(np.prod(dst.shape[:axis])), dst.shape[axis]
        inner = int(np.prod(dst.shape[axis + 1:]))
        rt.launch("gather.cu", f"scatter_add_axis<{CTYPE[dt]}>", *elementwise_geometry(src.size),
                  (dst, idx, src, rt.i64(outer), rt.i64(L), rt.i64(inner), rt.i64(idx.size), e))
    _raise_if(err, "scatter_add", f"a destination of shape {dst.shape}")
    return dst


def cast(x, src_dtype_name: str, dst_dtype_name: str, saturate: bool = False):
    """Contiguous x converted from one tessera dtype to another (bf16 as uint16 words,
    fp8 as uint8 words). saturate: fp8 destinations clamp to +-max instead of NaN/inf."""
    rt.dtype_name(x, src_dtype_name)
    rt.require_contiguous("cast", x)
    out = rt.empty(x.shape, dst_dtype_name)
    if x.size:
        rt.launch("cast.cu", cast_name(src_dtype_name, dst_dtype_name, saturate),
                  *elementwise_geometry(x.size), (x, out, rt.i64(x.size)))
    return out
