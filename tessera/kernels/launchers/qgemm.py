"""Launchers for qgemm.cu: int8 x int8 GEMM (tensor-core mma.sync on NVIDIA sm_80+,
dp4a / a portable dot product otherwise) and weight-only GEMM (int8 / packed int4
weights dequantized per tile). Inputs are CuPy arrays; B and W are (N, K), the
layout of a Linear weight, so both operands are K-contiguous.
"""
from __future__ import annotations

from . import _runtime as rt
from .registry import ACTIVATIONS, QGEMM_OUT, QGEMM_WO_DTYPES, qgemm_name, qgemm_wo_name


def _contig_rows(op, x):
    c = rt.cp()
    if x.ndim != 2:
        raise ValueError(f"[{op}] expects a 2-D operand, got shape {x.shape}")
    return x if x.strides[-1] == x.itemsize and x.strides[0] >= x.shape[1] * x.itemsize else \
        c.ascontiguousarray(x)


def _vec(op, s, n, what):
    """(pointer array or NULL, step): per-index scales (n,) / (n, 1) / (1, n), or one."""
    if s is None:
        return rt.NULL, rt.i64(0)
    c = rt.cp()
    s = c.ascontiguousarray(s, dtype=c.float32).reshape(-1)
    if s.size not in (1, n):
        raise ValueError(f"[{op}] {what} scale has {s.size} entries; expected 1 or {n}")
    return s, rt.i64(0 if s.size == 1 else 1)


def int8_gemm(a, b_nk, scale_a=None, scale_b=None, bias=None, activation=None, out_dtype="fp32"):
    """out = act(a @ b_nk.T * scale_a[m] * scale_b[n] + bias[n]); int32 out: the raw
    accumulator. a: (M, K) int8, b_nk: (N, K) int8."""
    if out_dtype not in QGEMM_OUT:
        raise TypeError(f"[int8_gemm] out_dtype {out_dtype} not one of {', '.join(QGEMM_OUT)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"[int8_gemm] activation {activation!r} not one of relu, gelu, silu, None")
    if out_dtype == "int32" and (scale_a is not None or scale_b is not None or bias is not None
                                 or activation not in (None, "none")):
        raise ValueError("[int8_gemm] int32 output is the raw accumulator: no scales, bias or activation")
    a, b = _contig_rows("int8_gemm", a), _contig_rows("int8_gemm", b_nk)
    if str(a.dtype) != "int8" or str(b.dtype) != "int8":
        raise TypeError(f"[int8_gemm] needs int8 operands, got {a.dtype} and {b.dtype}")
    (M, K), (N, K2) = a.shape, b.shape
    if K != K2:
        raise ValueError(f"[int8_gemm] shapes {a.shape} and {b.shape}.T: inner dimensions {K} and {K2} differ")
    out = rt.empty((M, N), out_dtype)
    if out.size == 0:
        return out
    sa, sa_step = _vec("int8_gemm", scale_a, M, "row")
    sb, sb_step = _vec("int8_gemm", scale_b, N, "column")
    if bias is not None:
        bias = rt.cp().ascontiguousarray(bias, dtype="float32").reshape(-1)
        if bias.size != N:
            raise ValueError(f"[int8_gemm] bias must have {N} entries, got {bias.size}")
    facts = rt.device_facts()
    # int8 mma.sync is inline PTX: NVIDIA sm_80+, and not on an emulated device
    tc = facts["platform"] == "cuda" and not facts["emulated"] and _sm() >= 80
    kernel, bm = ("qgemm_mma", 128) if tc else ("qgemm_dp4a", 64)
    grid = ((N + bm - 1) // bm, (M + bm - 1) // bm, 1)
    args = (a, b, out, sa, sa_step, sb, sb_step, rt.NULL if bias is None else bias,
            rt.i64(M), rt.i64(N), rt.i64(K), rt.i64(a.strides[0]), rt.i64(b.strides[0]), rt.i64(N))
    rt.launch("qgemm.cu", qgemm_name(kernel, out_dtype, activation if out_dtype != "int32" else None),
              grid, (256, 1, 1), args)
    return out


def _sm():
    from .. import loader
    arch = loader.device_arch()
    return int(arch[3:]) if arch.startswith("sm_") else 0


def weight_only_gemm(x, q, bufs, dtype, bias=None):
    """x (M, K) in `dtype` times the (N, K) quantized weight `q` transposed
    (a tessera QuantizedTensor whose buffers are `bufs` = (data, scale, zero_point))."""
    if dtype not in QGEMM_WO_DTYPES:
        raise TypeError(f"[weight_only_gemm] activation dtype {dtype} not one of {', '.join(QGEMM_WO_DTYPES)}")
    from ...precision.quant import SCHEMES
    c = rt.cp()
    data, scale, zp = bufs
    bits = SCHEMES[q.scheme].bits
    x = _contig_rows("weight_only_gemm", x)
    M, K = x.shape
    N = q.shape[0]
    group = q.group_size or K
    ngroups = K // group
    scale = c.ascontiguousarray(c.broadcast_to(scale.reshape(-1, scale.shape[-1] if q.group_size else 1),
                                               (N, ngroups)), dtype=c.float32)
    if zp is not None:
        zp = c.ascontiguousarray(c.broadcast_to(zp.reshape(-1, zp.shape[-1] if q.group_size else 1),
                                                (N, ngroups)), dtype=c.int32)
    w = c.ascontiguousarray(data).view(c.uint8)
    out = rt.empty((M, N), dtype)
    if out.size == 0:
        return out
    grid = ((N + 63) // 64, (M + 63) // 64, 1)
    args = (x, w, scale, rt.NULL if zp is None else zp, rt.NULL if bias is None else bias, out,
            rt.i64(M), rt.i64(N), rt.i64(K), rt.i64(x.strides[0] // x.itemsize), rt.i64(w.strides[0]),
            rt.i64(N), rt.i64(group), rt.i64(ngroups), c.int32(1 if bits == 8 or q.symmetric else 0))
    rt.launch("qgemm.cu", qgemm_wo_name(dtype, bits), grid, (256, 1, 1), args)
    return out
