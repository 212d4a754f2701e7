"""Launcher for matmul.cu and the measured choice between it and cuBLAS.

`matmul` always runs tessera's tiled kernel (WMMA tensor cores for fp16/bf16 on
NVIDIA, SIMT otherwise). `matmul_auto` runs whichever of tessera and cuBLAS
(cupy.matmul) measured faster for the shape bucket and dtype, timing both with CUDA
events the first time a bucket is seen; the decisions persist next to the kernel
cache and `matmul_choice` exposes them to the profiler.
"""
from __future__ import annotations

import json

from .. import loader
from . import _runtime as rt
from . import smem as _smem
from .geometry import matmul_config, matmul_geometry
from .registry import ACTIVATIONS, ITEMSIZE, MATMUL_DTYPES, matmul_name


def _operand(op, x, trans, size):
    """(batch, rows, cols, ld, batch_stride) of a 2-D/3-D operand whose last axis is
    contiguous; a transposed view's .T is passed with trans=True instead."""
    if x.ndim not in (2, 3):
        raise ValueError(f"[matmul] {op} must be 2-D or 3-D (batch, rows, cols), got shape {x.shape}")
    rows, cols = x.shape[-2:]
    if x.size == 0:  # CuPy gives empty arrays strides (0, 0): no layout to check, none is read
        return (x.shape[0] if x.ndim == 3 else 1), rows, cols, max(cols, 1), 0
    if x.shape[-1] > 1 and x.strides[-1] != size:
        raise ValueError(f"[matmul] {op} needs a contiguous last axis (strides {x.strides}); pass the "
                         "transposed view with trans_a/trans_b instead, or permute_copy it")
    ld = x.strides[-2] // size if rows > 1 else cols
    batch = x.shape[0] if x.ndim == 3 else 1
    bstride = (x.strides[0] // size if batch > 1 else 0) if x.ndim == 3 else 0
    return batch, rows, cols, max(ld, 1), bstride


def hint_refusal(dtype: str, tile) -> str | None:
    """Why the current device cannot run `tile` for `dtype` (the kernel, the limit
    and the number, as matmul's own check says it), or None when it can."""
    facts = rt.device_facts()
    platform = facts["platform"]
    if platform == "cuda" and facts["cc"] < (80 if dtype == "bf16" else 70):
        platform = "simt"
    bm, bn, bk = tile
    try:
        matmul_config(dtype, bm, bn, bk, tile=tuple(tile), platform=platform, smem_limit=_smem.smem_limit(facts))
    except ValueError as e:
        return str(e)
    return None


def matmul(a, b, *, out=None, trans_a: bool = False, trans_b: bool = False, bias=None,
           activation: str | None = None, alpha: float = 1.0, tile=None, dtype: str | None = None):
    """act(alpha * op(a) @ op(b) + bias) with op(x) = x.T (last two axes) if trans_x.

    a: (M, K) or (batch, M, K) [stored (.., K, M) if trans_a]; b: (K, N) or (batch, K, N)
    [stored (.., N, K) if trans_b]; a batch of 1 (or a 2-D operand) broadcasts. bias: (N,).
    activation: None/"relu"/"gelu"/"silu". tile=(BM, BN, BK) picks the instantiation
    (validated against the thread and register limits and the device's shared memory)."""
    dt = rt.dtype_name(a, dtype)
    if dt not in MATMUL_DTYPES:
        raise TypeError(f"[matmul] dtype {dt} not supported; supported: {', '.join(MATMUL_DTYPES)}")
    if b.dtype != a.dtype:
        raise TypeError(f"[matmul] operand dtypes differ: {a.dtype} and {b.dtype}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"[matmul] activation {activation!r} not one of relu, gelu, silu, None")
    size = ITEMSIZE[dt]
    ba, ra, ca, lda, sa = _operand("a", a, trans_a, size)
    bb, rb, cb, ldb, sb = _operand("b", b, trans_b, size)
    M, K = (ca, ra) if trans_a else (ra, ca)
    K2, N = (cb, rb) if trans_b else (rb, cb)
    if K != K2:
        raise ValueError(f"[matmul] shapes {a.shape}{'.T' if trans_a else ''} and {b.shape}"
                         f"{'.T' if trans_b else ''}: inner dimensions {K} and {K2} differ")
    if ba != bb and 1 not in (ba, bb):
        raise ValueError(f"[matmul] batch sizes {ba} and {bb} do not broadcast")
    batch = bb if ba == 1 else ba  # not max(): a batch of 0 broadcasts against 1 to 0
    if bias is not None and (bias.shape != (N,) or bias.dtype != a.dtype):
        raise ValueError(f"[matmul] bias must be ({N},) {a.dtype}, got {bias.shape} {bias.dtype}")
    shape = (batch, M, N) if max(a.ndim, b.ndim) == 3 else (M, N)
    if out is None:
        out = rt.empty(shape, dt)
    elif out.shape != shape or out.dtype != a.dtype or not out.flags.c_contiguous:
        raise ValueError(f"[matmul] out must be a contiguous {shape} {a.dtype} array")
    if out.size == 0:
        return out
    facts = rt.device_facts()
    platform = facts["platform"]
    if platform == "cuda" and facts["cc"] < (80 if dt == "bf16" else 70):
        platform = "simt"  # no tensor cores for this dtype before sm_80 (bf16) / sm_70 (fp16)
    cfg = matmul_config(dt, M, N, K, tile=tile, platform=platform, smem_limit=_smem.smem_limit(facts))
    name = matmul_name(dt, cfg.tile, trans_a, trans_b, activation, platform)
    grid, block, smem = matmul_geometry(cfg, M, N, batch)
    args = (a, b, out, rt.NULL if bias is None else bias, rt.i64(M), rt.i64(N), rt.i64(K),
            rt.i64(lda), rt.i64(ldb), rt.i64(N), rt.i64(batch), rt.i64(sa), rt.i64(sb), rt.i64(M * N),
            float(alpha))
    _smem.launch("matmul.cu", name, grid, block, args, smem)  # the tiles are dynamic shared memory
    return out


# ---- measured dispatch between tessera and cuBLAS ----------------------------------------
_choices: dict = {}
_loaded = False


def shape_bucket(batch: int, M: int, N: int, K: int) -> tuple:
    """Each extent rounded up to a power of two: nearby shapes share one measurement."""
    return tuple(1 << max(0, int(v) - 1).bit_length() for v in (batch, M, N, K))


def _key(shape, dtype):
    return f"{rt.device_facts()['name']}|{dtype}|{'x'.join(map(str, shape_bucket(*shape)))}"


def _path():
    return loader.cache_dir() / "matmul_dispatch.json"


def _load():
    global _loaded
    if not _loaded:
        _loaded = True
        try:
            _choices.update(json.loads(_path().read_text()))
        except (OSError, ValueError):
            pass  # missing or corrupt: measure again


def matmul_choice(shape, dtype: str):
    """"tessera" or "cublas" for (batch, M, N, K) in `dtype`, or None if not measured yet."""
    _load()
    return _choices.get(_key(shape, dtype))


def _time_ms(fn, reps=5):
    c = rt.cp()
    fn()  # warm-up: compiles and fills caches outside the timed region
    start, end = c.cuda.Event(), c.cuda.Event()
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return c.cuda.get_elapsed_time(start, end) / reps


def _cublas(a, b, trans_a, trans_b, bias, activation, alpha):
    c = rt.cp()
    x = c.matmul(a.swapaxes(-1, -2) if trans_a else a, b.swapaxes(-1, -2) if trans_b else b)
    if alpha != 1.0:
        x *= alpha
    if bias is not None:
        x += bias
    if activation == "relu":
        c.maximum(x, 0, out=x)
    elif activation == "gelu":
        from ...backend.cupy_source import cupyx
        x = 0.5 * x * (1 + cupyx().scipy.special.erf(x / 2 ** 0.5))
    elif activation == "silu":
        x = x / (1 + c.exp(-x))
    if x.dtype != a.dtype:  # a matmul of narrow floats may come back wider (ml_dtypes' bf16 does)
        from .movement import cast
        x = cast(c.ascontiguousarray(x), rt.dtype_name(x), rt.dtype_name(a))
    return x


def matmul_auto(a, b, *, trans_a=False, trans_b=False, bias=None, activation=None, alpha=1.0,
                dtype: str | None = None):
    """matmul through whichever implementation measured faster for this shape bucket."""
    dt = rt.dtype_name(a, dtype)
    M = a.shape[-1] if trans_a else a.shape[-2]
    K = a.shape[-2] if trans_a else a.shape[-1]
    N = b.shape[-2] if trans_b else b.shape[-1]
    batch = max(a.shape[0] if a.ndim == 3 else 1, b.shape[0] if b.ndim == 3 else 1)
    kw = dict(trans_a=trans_a, trans_b=trans_b, bias=bias, activation=activation, alpha=alpha)
    ours = lambda: matmul(a, b, dtype=dt, **kw)  # noqa: E731
    choice = matmul_choice((batch, M, N, K), dt)
    if choice is None:
        if dt == "bf16" and a.dtype.name != "bfloat16":
            choice = "tessera"  # bf16 as uint16 words (a CuPy without bfloat16): no cuBLAS through CuPy
        else:
            t_ours = _time_ms(ours)
            try:  # CuPy 14 multiplies bfloat16 arrays through cuBLAS; an older one may refuse
                t_cublas = _time_ms(lambda: _cublas(a, b, **kw))
            except (TypeError, ValueError, NotImplementedError):
                t_cublas = float("inf")
            choice = "tessera" if t_ours <= t_cublas else "cublas"
        _choices[_key((batch, M, N, K), dt)] = choice
        try:
            loader.cache_dir().mkdir(parents=True, exist_ok=True)
            loader._atomic_write(_path(), json.dumps(_choices, sort_keys=True, indent=1).encode())
        except OSError:
            pass  # a read-only cache dir only costs a re-measurement next process
    return ours() if choice == "tessera" else _cublas(a, b, **kw)
