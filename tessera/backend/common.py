"""What NumPy and CuPy backends share: the array-module (`xp`) implementation of
every primitive, written once against the NumPy API that both modules speak.

A subclass says how dtypes are stored (`storage_dtype`), how to move data to the
host, and overrides the primitives it runs with its own kernels (the CUDA backend
routes matmul, reductions and softmax to `tessera/kernels`).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import dtypes as _dt

# NumPy / ml_dtypes conversions into these from fp64 or int32/int64 may round twice
# (tessera/precision/convert.py rounds once)
_ROUND_ONCE = frozenset((_dt.bf16, _dt.fp8_e4m3, _dt.fp8_e5m2))

# Elementwise primitives by name -> attribute of the array module (numpy and cupy
# spell them the same). Entries that need more than one call live in _SPECIAL.
UFUNC_NAMES = {
    "negative": "negative", "positive": "positive", "abs": "abs", "sign": "sign",
    "square": "square", "reciprocal": "reciprocal", "sqrt": "sqrt", "exp": "exp",
    "exp2": "exp2", "expm1": "expm1", "log": "log", "log1p": "log1p", "log2": "log2",
    "log10": "log10", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "arcsin",
    "acos": "arccos", "atan": "arctan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh", "floor": "floor",
    "ceil": "ceil", "trunc": "trunc", "round": "rint", "logical_not": "logical_not",
    "bitwise_invert": "invert", "isnan": "isnan", "isinf": "isinf", "isfinite": "isfinite",
    "signbit": "signbit", "add": "add", "subtract": "subtract", "multiply": "multiply",
    "divide": "true_divide", "floor_divide": "floor_divide", "remainder": "remainder",
    "pow": "power", "maximum": "maximum", "minimum": "minimum", "atan2": "arctan2",
    "hypot": "hypot", "copysign": "copysign", "logaddexp": "logaddexp", "equal": "equal",
    "not_equal": "not_equal", "less": "less", "less_equal": "less_equal",
    "greater": "greater", "greater_equal": "greater_equal", "logical_and": "logical_and",
    "logical_or": "logical_or", "logical_xor": "logical_xor", "bitwise_and": "bitwise_and",
    "bitwise_or": "bitwise_or", "bitwise_xor": "bitwise_xor",
    "bitwise_left_shift": "left_shift", "bitwise_right_shift": "right_shift",
    "where": "where", "conj": "conjugate", "real": "real", "imag": "imag", "angle": "angle",
}


def _sigmoid(xp, x):
    # Two branches so that neither exp overflows: exp(-|x|) is always <= 1.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _rsqrt(xp, x):
    return (1 / xp.sqrt(x)).astype(x.dtype, copy=False)


_erf_vec = None


def _erf(xp, x):
    global _erf_vec
    if xp is np:
        try:
            from scipy.special import erf
            return erf(x).astype(x.dtype, copy=False)
        except ImportError:  # scipy is optional: fall back to math.erf per element
            if _erf_vec is None:
                _erf_vec = np.frompyfunc(math.erf, 1, 1)
            return _erf_vec(x).astype(x.dtype)
    from .cupy_source import cupyx
    return cupyx().scipy.special.erf(x)


# tessera's float semantics are IEEE's, silently (as PyTorch and CuPy): sqrt(-1) is
# NaN, 1/0 is inf. NumPy's floating-point warnings from ufuncs called inside tessera
# would be noise attributed to tessera's lines; check_numerics is the tool for
# finding NaNs. The filter only matches warnings raised from tessera's modules.
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tessera\.")

_SPECIAL = {"sigmoid": _sigmoid, "rsqrt": _rsqrt, "erf": _erf}


class ArrayBackend:
    """A backend whose storage is an `xp` array module (numpy or cupy)."""

    name = "?"
    FUSE_MIN_SIZE = 0
    FUSED_RUNNER = "run_cpu"

    def __init__(self, xp):
        self.xp = xp
        self.array_type = xp.ndarray
        fns = {}
        for op, attr in UFUNC_NAMES.items():
            fns[op] = getattr(xp, attr)
        for op, f in _SPECIAL.items():
            fns[op] = (lambda f: lambda *a: f(xp, *a))(f)
        self.ew_fns = fns

    # -- dtype storage: overridden where storage differs from compute --------
    def storage_dtype(self, dtype):
        raise NotImplementedError

    def compute_dtype(self, dtype):
        """The NumPy-API dtype that math on `dtype` runs in (eager, unfused)."""
        return self.storage_dtype(dtype)

    def compute(self, buf, dtype):
        """`buf` as an array that xp math accepts (CUDA: bf16 words -> fp32)."""
        return buf

    def store(self, arr, dtype):
        """Convert a computed array into `dtype`'s storage (rounding as the dtype does)."""
        sd = self.storage_dtype(dtype)
        ad = arr.dtype
        if ad is not sd and ad != sd:  # identity first: NumPy's builtin dtypes are singletons
            if dtype in _ROUND_ONCE and ad == np.float64:  # one rounding, not two via fp32
                from ..precision.convert import to_narrow
                return to_narrow(arr, _dt.fp64, dtype)
            arr = arr.astype(sd)
        return arr

    def to_numpy(self, buf, dtype):
        raise NotImplementedError

    def from_numpy(self, arr, dtype):
        raise NotImplementedError

    # -- primitives used by the ops ------------------------------------------
    def elementwise(self, name, args, out_dtype):
        """Eager elementwise op on computed arrays / Python scalars; returns storage."""
        return self.store(self.ew_fns[name](*args), out_dtype)

    def accum_dtype(self, dtype):
        """Accumulator for reductions: at least fp32 for floats, int64 for ints."""
        if dtype is _dt.fp32:
            return np.float32
        if dtype.kind == "f":
            return np.float64 if dtype is _dt.fp64 else np.float32
        if dtype.kind in "biu":
            return np.int64
        return self.storage_dtype(dtype)

    def reduce(self, name, buf, dtype, axes, keepdims, out_dtype, **kw):
        xp = self.xp
        x = self.compute(buf, dtype)
        if name == "sum":
            r = xp.add.reduce(x, axis=axes, keepdims=keepdims,
                              dtype=self.accum_dtype(out_dtype) if out_dtype.kind != "c" else None)
        elif name in ("prod", "mean"):
            acc = self.accum_dtype(out_dtype) if out_dtype.kind != "c" else None
            fn = xp.prod if name == "prod" else xp.mean
            r = fn(x, axis=axes, keepdims=keepdims, dtype=acc)
        elif name in ("max", "min"):
            r = (xp.max if name == "max" else xp.min)(x, axis=axes, keepdims=keepdims)
        elif name in ("var", "std"):
            xx = x if dtype is _dt.fp64 or dtype.kind == "c" else x.astype(np.float32)
            r = (xp.var if name == "var" else xp.std)(xx, axis=axes, keepdims=keepdims,
                                                      ddof=kw.get("correction", 0))
        elif name in ("all", "any"):
            r = (xp.all if name == "all" else xp.any)(x, axis=axes, keepdims=keepdims)
        elif name == "logsumexp":
            xx = x if dtype is _dt.fp64 else x.astype(np.float32)
            if any(xx.shape[a] == 0 for a in axes):
                # over an empty axis the sum of exps is 0: -inf, as torch (max has no
                # identity there, and CuPy's max takes no `initial`)
                r = xp.full(tuple(1 if i in axes else d for i, d in enumerate(xx.shape)), -np.inf,
                            dtype=xx.dtype)
            else:
                m = xp.max(xx, axis=axes, keepdims=True)
                m = xp.where(xp.isfinite(m), m, 0)
                r = xp.log(xp.sum(xp.exp(xx - m), axis=axes, keepdims=True)) + m
            if not keepdims:
                r = xp.squeeze(r, axis=axes)
        else:
            raise KeyError(name)
        if type(r) is not self.array_type:
            r = xp.asarray(r)
        return self.store(r, out_dtype)

    def arg_reduce(self, name, buf, dtype, axis, keepdims):
        xp = self.xp
        x = self.compute(buf, dtype)
        fn = xp.argmax if name == "argmax" else xp.argmin
        if axis is None:
            r = fn(x.reshape(-1))
            if keepdims:
                r = xp.reshape(r, (1,) * x.ndim)
        else:
            r = fn(x, axis=axis, keepdims=keepdims)
        return xp.asarray(r).astype(np.int64, copy=False)

    def matmul(self, a, b, dtype):
        xp = self.xp
        if dtype.kind == "f" and dtype.itemsize < 4:
            # BLAS has no half-precision GEMM on the CPU: accumulate in fp32, round once.
            r = xp.matmul(self.compute(a, dtype).astype(np.float32),
                          self.compute(b, dtype).astype(np.float32))
        elif dtype.kind in "biu":
            r = xp.matmul(a.astype(np.int64) if dtype.kind == "b" else a,
                          b.astype(np.int64) if dtype.kind == "b" else b)
        else:
            r = xp.matmul(a, b)
        return self.store(r, dtype)

    def softmax(self, buf, dtype, axis, log):
        xp = self.xp
        x = self.compute(buf, dtype)
        xx = x if dtype is _dt.fp64 else x.astype(np.float32, copy=False)
        m = xx.max(axis=axis, keepdims=True)  # array methods: no wrapper overhead
        m = xp.where(xp.isfinite(m), m, 0)
        z = xx - m  # the one full-size temporary; the rest works in place
        if log:
            r = xp.subtract(z, xp.log(xp.exp(z).sum(axis=axis, keepdims=True)), out=z)
        else:
            e = xp.exp(z, out=z)
            r = xp.divide(e, e.sum(axis=axis, keepdims=True), out=e)
        return self.store(r, dtype)

    def layer_norm_forward(self, buf, weight, bias, dtype, n_axes, eps):
        """Layer normalisation over the last `n_axes` axes, as
        `torch.nn.functional.layer_norm` (biased variance): y = (x - mean) * rstd *
        weight + bias, with `weight`/`bias` buffers of `dtype` or None. Returns
        (y in `dtype`'s storage, mean, rstd); mean and rstd are in the accumulation
        dtype (fp32, fp64 for fp64) with the reduced axes kept as size 1, for the
        backward. fp16/bf16 compute in fp32 and round once."""
        xp = self.xp
        acc = np.float64 if dtype is _dt.fp64 else np.float32
        x = self.compute(buf, dtype).astype(acc, copy=False)
        axes = tuple(range(x.ndim - n_axes, x.ndim))
        mean = xp.mean(x, axis=axes, keepdims=True)
        xc = x - mean
        rstd = (1 / xp.sqrt(xp.mean(xc * xc, axis=axes, keepdims=True) + acc(eps))).astype(acc)
        y = xc * rstd
        if weight is not None:
            y = y * self.compute(weight, dtype).astype(acc, copy=False)
        if bias is not None:
            y = y + self.compute(bias, dtype).astype(acc, copy=False)
        return self.store(y, dtype), mean, rstd

    def cast(self, buf, src, dst):
        """Casts by tessera's one table (tessera/precision/convert.py): bool targets
        test != 0, float -> int truncates (NaN and out of range by a stated rule, not
        NumPy's platform or ml_dtypes' version), into bf16/fp8 rounds once from the
        exact source value."""
        x = self.compute(buf, src)
        if dst.kind == "b":
            return self.store(x != 0, dst)
        if src.kind == "c" and dst.kind != "c":  # keep the real part, without ComplexWarning
            x = x.real
            src = _dt.fp64 if src is _dt.complex128 else _dt.fp32
        if self.xp is np and (dst.kind in "iu" and src.kind == "f" or dst in _ROUND_ONCE
                              and src is not _dt.fp32 and src is not dst):
            from ..precision.convert import cast_array
            return cast_array(x, src, dst)
        return self.store(x.astype(self.compute_dtype(dst)), dst)

    def int8_gemm(self, a, b):
        """Exact int32 product of int8 buffers a (M, K) @ b (K, N)."""
        from ..precision.qmatmul import int8_gemm_blas
        return int8_gemm_blas(self.xp, a, b)

    def weight_only_gemm(self, xbuf, xdt, q, bufs, trans):
        """A float activation times a quantized weight, never materializing the
        full-precision weight (see tessera.precision.qmatmul)."""
        from ..precision.qmatmul import weight_only_blocks
        return weight_only_blocks(self, xbuf, xdt, q, bufs, trans)

    def scatter_add(self, target, index, values):
        """target[index] += values, accumulating repeated indices (in place)."""
        xp = self.xp
        if xp is np and _rows_scatter(target, index, values):
            return
        xp.add.at(target, index, values)

    def gemm_into(self, a, b, out):
        """out[...] = a @ b for 2-D arrays of one float dtype (the CPU backend
        splits big ones over its OpenMP pool)."""
        return self.xp.matmul(a, b, out=out)

    def grouped_matmul(self, x, w, offsets, dtype, trans_w=False):
        """Rows offsets[g]:offsets[g+1] of x (R, K) times w[g] (w (G, K, N), or
        (G, N, K) read transposed): the MoE expert step. One BLAS call per
        non-empty group, written in place into one output (the CUDA backend runs
        all groups in one kernel, grouped_matmul.cu)."""
        xp = self.xp
        low = dtype.kind == "f" and dtype.itemsize < 4  # no half GEMM in CPU BLAS
        xc, wc = self.compute(x, dtype), self.compute(w, dtype)
        if low:
            xc, wc = xc.astype(np.float32), wc.astype(np.float32)
        n = w.shape[1] if trans_w else w.shape[2]
        out = xp.empty((x.shape[0], n), dtype=xc.dtype)
        offs = [int(o) for o in (offsets.tolist() if hasattr(offsets, "tolist") else offsets)]
        for g in range(len(offs) - 1):
            a, b = offs[g], offs[g + 1]
            if b > a:
                self.gemm_into(xc[a:b], wc[g].T if trans_w else wc[g], out[a:b])
        out[offs[-1]:] = 0  # rows past the last group (dropped tokens) are defined as 0
        return self.store(out, dtype)

    def grouped_matmul_wgrad(self, x, dy, offsets, dtype):
        """dW[g] = x[rows of g].T @ dy[rows of g], (G, K, N); zeros for empty groups."""
        xp = self.xp
        low = dtype.kind == "f" and dtype.itemsize < 4
        xc, dc = self.compute(x, dtype), self.compute(dy, dtype)
        if low:
            xc, dc = xc.astype(np.float32), dc.astype(np.float32)
        offs = [int(o) for o in (offsets.tolist() if hasattr(offsets, "tolist") else offsets)]
        out = xp.zeros((len(offs) - 1, x.shape[1], dy.shape[1]), dtype=xc.dtype)
        for g in range(len(offs) - 1):
            a, b = offs[g], offs[g + 1]
            if b > a:
                self.gemm_into(xc[a:b].T, dc[a:b], out[g])
        return self.store(out, dtype)

    def copy(self, buf):
        """A C-contiguous copy with its own storage."""
        return self.xp.array(buf, copy=True, order="C")

    def cumsum(self, buf, dtype, axis, out_dtype):
        """Running sum along `axis` in the accumulation dtype (not yet stored)."""
        return self.xp.cumsum(self.compute(buf, dtype), axis=axis,
                              dtype=self.accum_dtype(out_dtype))

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=self.storage_dtype(dtype))

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=self.storage_dtype(dtype))

    def full(self, shape, value, dtype):
        cd = self.compute_dtype(dtype)
        return self.store(self.xp.full(shape, value, dtype=cd), dtype)

    def asarray(self, obj, dtype):
        """Host data (NumPy array or nested lists already validated) -> storage."""
        a = np.asarray(obj)
        if dtype.np_storage is not None and a.dtype != dtype.np_storage:
            a = a.astype(dtype.np_storage)
        return self.from_numpy(a, dtype)

    def run_fused(self, outputs, order, shape, is_reduce):
        """Run a pending fusion group; returns (buffers, info)."""
        from ..fusion.execute import run_group
        return run_group(self, outputs, order, shape, self.FUSED_RUNNER)

    def synchronize(self):
        pass



_ALL = slice(None)


def _rows_scatter(target, index, values, max_repeats=None):
    """`numpy.add.at(target, index, values)` for whole rows (a 1-D integer index into
    axis 0, values (len(index),) + target.shape[1:]) in rounds: round j adds the
    j-th occurrence of every index at once (`target[rows] += v`, rows unique within
    a round). The same additions in the same order, so the same bits, without
    add.at's per-element loop (~8 ns per element here). MoE at 8192 tokens, 1024
    wide, fp32: the combine (16384 rows into 8192) 150 -> 21 ms, the expert-bias
    gradient (16384 rows into 8) 142 -> 34 ms. False (add.at does it): not this
    case, or an index repeated more than `max_repeats` times (default: while the
    rounds, ~15 us each, cost less than add.at would)."""
    if type(index) is tuple and index and all(type(i) is slice and i == _ALL for i in index[1:]):
        index = index[0]  # x[idx] and x[idx, :] keys arrive as (idx,), (idx, slice(None))
    if type(index) is not np.ndarray or type(values) is not np.ndarray or index.ndim != 1 \
            or index.dtype.kind not in "iu" \
            or target.ndim < 2 or values.shape != index.shape + target.shape[1:] \
            or values.dtype != target.dtype or index.size < 2:
        return False
    n = target.shape[0]
    if index.min() < -n or index.max() >= n:
        return False  # add.at raises the IndexError
    idx = np.where(index < 0, index + n, index)
    order = np.argsort(idx, kind="stable")  # occurrences of one row stay in order
    sidx = idx[order]
    new_group = np.concatenate(([True], sidx[1:] != sidx[:-1]))
    starts = np.flatnonzero(new_group)
    rank = np.arange(idx.size) - np.repeat(starts, np.diff(np.append(starts, idx.size)))
    if max_repeats is None:
        max_repeats = max(8, values.size // 2048)
    if rank.max() >= max_repeats:
        return False
    # in chunks of ~4 MB of rows: the gathered temporaries stay in cache and below
    # glibc's mmap threshold (each mmap'd one page-faults in again)
    chunk = max(1, (4 << 20) // max(1, values[0].nbytes))
    for j in range(int(rank.max()) + 1):
        sel = order[rank == j]
        for c in range(0, sel.size, chunk):
            s = sel[c:c + chunk]
            target[idx[s]] += values[s]
    return True
