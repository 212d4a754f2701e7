"""Quantized matrix products.

  int8_matmul(a, b)        int8 x int8 -> int32, exact (the reference is NumPy's
                           int32 matmul)
  matmul(a, b, ...)        QuantizedTensor operands: int8 x int8 accumulates in int32
                           and rescales once by scale_a (per tensor or per row) times
                           scale_b (per tensor or per column); a float activation times
                           a quantized weight (int8, int4, fp8; any scheme) dequantizes
                           the weight block by block inside the product, never making
                           the full-precision weight; bias and activation follow
  linear(x, w, ...)        x @ w.T + bias with w a quantized (out, in) weight
`op.matmul` sends QuantizedTensor operands here.

CPU: int8 products are exact in fp32 while |sum| < 2**24, i.e. for K <= 1024
(127 * 127 * 1024 < 2**24), so K is cut into chunks of 1024 that run as BLAS sgemm,
each chunk converted to int32 and summed in int32: exact, and as fast as sgemm.
GPU: tessera/kernels/qgemm.cu (int8 mma.sync / dp4a on NVIDIA, a portable dot
product on HIP; weight-only kernels that dequantize tiles as they load them).

    >>> import tessera as ts
    >>> a = ts.asarray([[1, 2], [3, 4]], dtype="int8")
    >>> int8_matmul(a, a).tolist()
    [[7, 10], [15, 22]]
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..autograd.engine import needs_grad
from ..errors import DTypeError, ShapeError
from ..ops import elementwise as ew, movement as mv
from ..ops._dispatch import apply_op, same_device, to_tensor
from ..tensor import Tensor
from .quant import SCHEMES, QuantizedTensor

__all__ = ["int8_matmul", "matmul", "linear", "maybe_qmatmul"]

K_CHUNK = 1024     # exactness bound of int8 products summed in fp32 (see above)
BLOCK = 512        # K-block of the weight dequantized at a time (weight-only)


def int8_gemm_blas(xp, a, b):
    """int32 a @ b for int8 buffers a (M, K), b (K, N) (views allowed), through the
    fp32 BLAS in K-chunks small enough that every partial sum is exact (the
    backends' portable path; the CUDA backend runs qgemm.cu instead)."""
    K = a.shape[-1]
    out = None
    for k0 in range(0, max(K, 1), K_CHUNK):
        k1 = min(K, k0 + K_CHUNK)
        p = xp.matmul(a[..., k0:k1].astype(xp.float32), b[..., k0:k1, :].astype(xp.float32))
        p = p.astype(xp.int32)  # exact: |p| <= 127*127*1024 < 2**24
        out = p if out is None else xp.add(out, p, out=out)
    return out


def int8_matmul(a, b):
    """Exact int32 product of int8 matrices (batched like matmul), as
    `numpy.matmul(a.astype(int32), b.astype(int32))`."""
    a, b = to_tensor("int8_matmul", a), to_tensor("int8_matmul", b)
    dev = same_device("int8_matmul", a, b)
    if a.dtype is not _dt.int8 or b.dtype is not _dt.int8:
        raise DTypeError(f"[int8_matmul] needs int8 operands, got {a.dtype.name} {a.shape} and "
                         f"{b.dtype.name} {b.shape}")
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"[int8_matmul] shapes {a.shape} and {b.shape}: need matrices with equal "
                         "inner dimensions")
    backend = dev.backend
    return apply_op("int8_matmul", (a, b), backend.int8_gemm, _dt.int32, dev)


def _epilogue(y, bias, activation, out_dtype):
    if bias is not None:
        y = y + bias
    if activation is not None:
        from ..ops import nn as nnops
        fns = {"relu": nnops.relu, "gelu": nnops.gelu, "silu": nnops.silu}
        if activation not in fns:
            raise ValueError(f"[matmul] activation {activation!r} not one of relu, gelu, silu, None")
        y = fns[activation](y)
    return y if out_dtype is None or y.dtype is out_dtype else y.astype(out_dtype)


def _desc(q, name):
    ax = f" axis={q.axis}" if q.axis is not None and not q.group_size else ""
    gs = f" group_size={q.group_size}" if q.group_size else ""
    return f"{name} {q.scheme}{ax}{gs} (shape {q.shape})"


def _scale_kind(q, row_axis):
    """'tensor', 'vector' (per index of row_axis) or None (incompatible)."""
    s = SCHEMES[q.scheme]
    if s.granularity == "tensor" and q.axis is None:
        return "tensor"
    if s.granularity == "channel" or (s.kind == "fp8" and q.axis is not None):
        return "vector" if q.axis == row_axis % q.ndim else None
    return None


def _qq_matmul(a, b, bias, activation, out_dtype):
    sa, sb = SCHEMES[a.scheme], SCHEMES[b.scheme]
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ShapeError(f"[matmul] quantized operands {_desc(a, 'a')} and {_desc(b, 'b')}: need "
                         "2-D matrices with equal inner dimensions")
    if sa.kind != sb.kind:
        raise DTypeError(f"[matmul] quantized operands of different schemes: {_desc(a, 'a')} and "
                         f"{_desc(b, 'b')}; quantize both to int8 or both to fp8")
    ka, kb = _scale_kind(a, 0), _scale_kind(b, 1)
    if ka is None or kb is None or sa.bits != 8:
        raise DTypeError(f"[matmul] incompatible scales: {_desc(a, 'a')} and {_desc(b, 'b')}; an "
                         "int8 GEMM rescales once, so a needs per-tensor or per-row (axis 0) scales "
                         "and b per-tensor or per-column (axis 1) scales, symmetric")
    if not b.symmetric:
        raise DTypeError(f"[matmul] {_desc(b, 'b')} is asymmetric; the weight operand must be symmetric")
    out_dtype = out_dtype or _dt.promote(a.dtype, b.dtype)
    if sa.kind == "fp8":  # scaled fp8 GEMM: exact products of the fp8 values in fp32
        from ..ops.linalg import matmul as fmatmul
        acc = fmatmul(a.data.astype(_dt.fp32), b.data.astype(_dt.fp32))
    else:
        acc = int8_matmul(a.data, b.data)
        if a.zero_point is not None:  # sum_k (qa - za) qb = acc - za * colsum(qb)
            from ..ops.reduce import sum as rsum
            colsum = rsum(b.data.astype(_dt.int32), axis=0, keepdims=True, dtype=_dt.int32)
            acc = acc - a.zero_point * colsum
        acc = acc.astype(_dt.fp32)
    y = acc * a.scale * b.scale  # one rescale: (M, 1) or () times (1, N) or ()
    return _epilogue(y, bias, activation, out_dtype)


# ---- weight-only: dequantize the weight block by block -------------------------------
def _deq_block(backend, q, bufs, bax, k0, k1):
    """Rows (bax=0) or columns (bax=1) k0:k1 of the 2-D weight `q`, dequantized to fp32."""
    xp = backend.xp
    data, scale, zp = bufs
    s, gs = SCHEMES[q.scheme], q.group_size
    sl = (slice(k0, k1), slice(None)) if bax == 0 else (slice(None), slice(k0, k1))
    if s.bits == 4:
        d = data[k0:k1] if bax == 0 else data[:, k0 // 2:k1 // 2]
        lo, hi = (d & 0xF).astype(xp.int8), (d >> 4).astype(xp.int8)
        if q.symmetric:
            lo, hi = (lo ^ 8) - 8, (hi ^ 8) - 8
        v = xp.empty(d.shape[:-1] + (d.shape[-1] * 2,), dtype=xp.float32)
        v[:, 0::2], v[:, 1::2] = lo, hi
    elif q.data.dtype.kind == "f":
        # fp8 codes: widened by the backend (on CUDA they are uint8 words, and
        # astype would read the words as integers)
        v = backend.compute(data[sl], q.data.dtype).astype(xp.float32, copy=False)
    else:
        v = data[sl].astype(xp.float32)

    def expand(t):
        if t is None:
            return None
        if gs:  # (R, C // gs) group values -> per element of the block
            t = t[k0:k1] if bax == 0 else t[:, k0 // gs:(k1 + gs - 1) // gs]
            return xp.repeat(t, gs, axis=1)[:, :v.shape[1]] if bax == 0 else xp.repeat(t, gs, axis=1)
        if t.ndim == 2 and t.shape[bax] > 1:
            return t[sl]
        return t
    z = expand(zp)
    if z is not None:
        v -= z
    v *= expand(scale)
    return v


def weight_only_blocks(backend, xbuf, xdt, q, bufs, trans):
    """x @ W (trans=False, W (K, N)) or x @ W.T (trans=True, W (N, K)) in fp32, for a
    2-D x (M, K), dequantizing BLOCK columns of W at a time (the portable path)."""
    xp = backend.xp
    acc = xp.float64 if xdt is _dt.fp64 else xp.float32  # fp64 activations stay fp64
    x = backend.compute(xbuf, xdt).astype(acc, copy=False)
    bax = 1 if trans else 0
    K = q.shape[bax]
    # a column block holds whole groups and whole int4 byte pairs
    unit = math.lcm(q.group_size or 1, 2 if SCHEMES[q.scheme].bits == 4 else 1) if bax == 1 else 1
    step = max(unit, (BLOCK // unit) * unit)
    out = None
    for k0 in range(0, K, step):
        k1 = min(K, k0 + step)
        w = _deq_block(backend, q, bufs, bax, k0, k1)
        p = x[:, k0:k1] @ (w.T if trans else w)
        out = p if out is None else xp.add(out, p, out=out)
    if out is None:
        out = xp.zeros((x.shape[0], q.shape[0] if trans else q.shape[1]), dtype=acc)
    return out


def _weight_only(x, q, trans, bias, activation, out_dtype):
    if q.ndim != 2:
        raise ShapeError(f"[matmul] quantized weight must be 2-D, got {_desc(q, 'weight')}")
    K = q.shape[1] if trans else q.shape[0]
    if x.ndim < 1 or x.shape[-1] != K:
        raise ShapeError(f"[matmul] shapes {x.shape} and {_desc(q, 'weight' + ('.T' if trans else ''))}: "
                         f"inner dimensions {x.shape[-1] if x.ndim else None} and {K} differ")
    if x.dtype.kind != "f":
        raise DTypeError(f"[matmul] a quantized weight needs a floating activation, got {x.dtype.name}")
    same_device("matmul", x, q.data)
    N = q.shape[0] if trans else q.shape[1]
    lead = x.shape[:-1]
    x2 = mv.reshape(x, (-1, K)) if x.ndim != 2 else x
    backend, xdt = x.device.backend, x.dtype
    ins = (x2, q.data, q.scale, q.zero_point)
    has_zp = q.zero_point is not None

    def fwd(xb, db, sb, *zb):
        return backend.store(backend.weight_only_gemm(xb, xdt, q, (db, sb, zb[0] if has_zp else None),
                                                      trans), xdt)

    def vjp(g):  # d x = g @ op(W).T: the same blockwise product with the other orientation
        return (_weight_only(g, q, not trans, None, None, None), None, None, None)
    y = apply_op("qmatmul", ins, fwd, xdt, x.device, vjp if needs_grad(x) else None,
                 shape=(x2.shape[0], N))
    if x.ndim != 2:
        y = mv.reshape(y, lead + (N,))
    return _epilogue(y, bias, activation, out_dtype)


def matmul(a, b, bias=None, activation=None, out_dtype=None):
    """a @ b with QuantizedTensor operand(s) (see the module docstring), then
    + bias and `activation` ('relu', 'gelu', 'silu' or None)."""
    qa, qb = isinstance(a, QuantizedTensor), isinstance(b, QuantizedTensor)
    out_dtype = None if out_dtype is None else _dt.get_dtype(out_dtype)
    if qa and qb:
        return _qq_matmul(a, b, bias, activation, out_dtype)
    if qb:
        return _weight_only(to_tensor("matmul", a), b, False, bias, activation, out_dtype)
    if qa:  # a quantized activation with a float weight: the activation is the small side
        from ..ops.linalg import matmul as fmatmul
        return _epilogue(fmatmul(a.dequantize(), to_tensor("matmul", b)), bias, activation, out_dtype)
    from ..ops.linalg import matmul as fmatmul
    return _epilogue(fmatmul(a, b), bias, activation, out_dtype)


def linear(x, w, bias=None, activation=None, out_dtype=None):
    """x @ w.T + bias for a quantized (out_features, in_features) weight `w`, as
    `torch.nn.functional.linear`; `x` a float tensor or a QuantizedTensor (int8 x int8)."""
    if not isinstance(w, QuantizedTensor):
        raise DTypeError(f"[linear] expects a QuantizedTensor weight, got {type(w).__name__}")
    out_dtype = None if out_dtype is None else _dt.get_dtype(out_dtype)
    if isinstance(x, QuantizedTensor):
        return _qq_matmul(x, w.T, bias, activation, out_dtype)
    return _weight_only(to_tensor("linear", x), w, True, bias, activation, out_dtype)


def maybe_qmatmul(x1, x2):
    """`op.matmul`'s hook: the product if an operand is a QuantizedTensor, else None."""
    if isinstance(x1, QuantizedTensor) or isinstance(x2, QuantizedTensor):
        return matmul(x1, x2)
    return None
