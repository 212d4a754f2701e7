"""Quantized tensors: the scheme table, `quantize` / `dequantize`, `QuantizedTensor`
(packed data + scales + zero points + scheme + original dtype) and its save/load.

Schemes (one table, `SCHEMES`):
  int8_per_tensor   one scale;                      codes -127..127 (symmetric)
  int8_per_channel  one scale per index of `axis` (default 0, a weight's output channels)
  int8_per_group    one scale per `group_size` run along the last axis
  int4_per_group    as int8_per_group in 4 bits, two codes per byte (low nibble first)
  fp8_e4m3/e5m2     x / scale rounded to nearest even into fp8; per tensor, or per
                    channel when `axis` is given
Asymmetric int schemes (`symmetric=False`) use the full code range (-128..127,
0..15 for int4) with an int32 zero point: x ~ (q - zero_point) * scale.

Quantize and dequantize are written in tessera ops (abs, max, divide, round, clip,
cast), so on big tensors each is one fused kernel (generated C on the CPU, CUDA
on a GPU). A scale is never below the smallest normal fp32 (2**-126): an all-zero
channel gets that scale (no division by zero) and 1/scale never overflows.

    >>> import tessera as ts
    >>> q = ts.op.quantize(ts.asarray([[1.0, -2.0], [0.5, 0.25]]), scheme="int8_per_channel")
    >>> q.int_repr().tolist()
    [[64, -127], [127, 64]]
"""
from __future__ import annotations

import json

import numpy as np

from .. import dtypes as _dt
from .._config import STATE
from ..autograd.grad_mode import no_grad
from ..errors import DTypeError, NumericsError, ShapeError
from ..ops import elementwise as ew, movement as mv, reduce as rd

__all__ = ["SCHEMES", "QuantizedTensor", "quantize", "dequantize", "save", "load"]

TINY = 2.0 ** -126  # smallest normal fp32: the floor of every scale


class Scheme:
    __slots__ = ("name", "kind", "bits", "granularity", "code_dtype", "fmax")

    def __init__(self, name, kind, bits, granularity, code_dtype, fmax=None):
        self.name, self.kind, self.bits, self.granularity = name, kind, bits, granularity
        self.code_dtype, self.fmax = code_dtype, fmax

    def qrange(self, symmetric):
        """(qmin, qmax) of the integer codes."""
        if symmetric:
            m = (1 << (self.bits - 1)) - 1
            return -m, m
        return (-128, 127) if self.bits == 8 else (0, 15)


SCHEMES = {
    "int8_per_tensor": Scheme("int8_per_tensor", "int", 8, "tensor", _dt.int8),
    "int8_per_channel": Scheme("int8_per_channel", "int", 8, "channel", _dt.int8),
    "int8_per_group": Scheme("int8_per_group", "int", 8, "group", _dt.int8),
    "int4_per_group": Scheme("int4_per_group", "int", 4, "group", _dt.uint8),
    "fp8_e4m3": Scheme("fp8_e4m3", "fp8", 8, "tensor", _dt.fp8_e4m3, 448.0),
    "fp8_e5m2": Scheme("fp8_e5m2", "fp8", 8, "tensor", _dt.fp8_e5m2, 57344.0),
}
DEFAULT_GROUP = {"int8_per_group": 128, "int4_per_group": 32}


def get_scheme(op, scheme):
    s = SCHEMES.get(scheme)
    if s is None:
        raise ValueError(f"[{op}] unknown scheme {scheme!r}; accepted: {', '.join(SCHEMES)}")
    return s


def resolve(op, x, scheme, axis, group_size, symmetric):
    """Validate the arguments against `x`; returns (Scheme, axis, group_size)."""
    s = get_scheme(op, scheme)
    if not x.dtype.is_floating:
        raise DTypeError(f"[{op}] scheme {scheme} quantizes floating tensors; got {x.dtype.name} "
                         f"(shape {x.shape}); integer data is already quantized")
    if s.kind == "fp8" and not symmetric:
        raise ValueError(f"[{op}] scheme {scheme} is symmetric only (symmetric=False given)")
    gran = s.granularity
    if gran == "channel" or (s.kind == "fp8" and axis is not None):
        ax = 0 if axis is None else axis
        if not isinstance(ax, (int, np.integer)) or not -max(x.ndim, 1) <= ax < max(x.ndim, 1) \
                or x.ndim == 0:
            raise ShapeError(f"[{op}] scheme {scheme}: axis {axis!r} is out of range for shape "
                             f"{x.shape} (accepted: {-x.ndim}..{x.ndim - 1})")
        return s, int(ax) % x.ndim, None
    if axis is not None and gran != "group":
        raise ShapeError(f"[{op}] scheme {scheme} has one scale per tensor; axis={axis} is not "
                         "accepted (use int8_per_channel)")
    if gran == "group":
        if axis not in (None, -1, x.ndim - 1):
            raise ShapeError(f"[{op}] scheme {scheme} groups along the last axis; got axis={axis} "
                             f"for shape {x.shape}")
        gs = DEFAULT_GROUP[scheme] if group_size is None else group_size
        n = x.shape[-1] if x.ndim else 0
        if x.ndim == 0 or not isinstance(gs, (int, np.integer)) or gs <= 0 or n % gs:
            raise ShapeError(f"[{op}] scheme {scheme}: group_size {gs} must divide the last axis "
                             f"(shape {x.shape})")
        if s.bits == 4 and n % 2:
            raise ShapeError(f"[{op}] scheme {scheme} packs two codes per byte: the last axis must be "
                             f"even, got shape {x.shape}")
        return s, x.ndim - 1, int(gs)
    return s, None, None


def _grouped(t, gs):
    """(..., n) -> (..., n // gs, gs): groups become the last axis."""
    return t.reshape(t.shape[:-1] + (t.shape[-1] // gs, gs))


def _reduce_axes(s, ndim, axis):
    if s.granularity == "group":
        return (ndim,)  # the group axis of the (..., ng, gs) view
    if axis is None:
        return tuple(range(ndim))
    return tuple(i for i in range(ndim) if i != axis)


def _check_finite(op, scheme, x, stat):
    """Integer codes cannot hold NaN/Inf: refuse rather than invent a finite code.
    `stat` is a small reduced tensor that is non-finite iff the input is."""
    if not bool(rd.all(ew.isfinite(stat))):
        bad = int(rd.sum(ew.logical_not(ew.isfinite(x))))
        raise NumericsError(f"[quantize] scheme {scheme}: the {x.dtype.name} input of shape {x.shape} "
                            f"holds {bad} NaN/Inf value(s); no {scheme} code represents them")


def qparams(s, lo, hi, symmetric):
    """Scale (fp32, >= 2**-126) and zero point (int32 or None) from the observed range."""
    if s.kind == "fp8":
        amax = ew.maximum(hi, -lo) if lo is not None else hi
        return ew.maximum((amax / s.fmax).astype(_dt.fp32), TINY), None
    qmin, qmax = s.qrange(symmetric)
    if symmetric:
        amax = ew.maximum(hi, -lo) if lo is not None else hi
        return ew.maximum((amax / qmax).astype(_dt.fp32), TINY), None
    lo, hi = ew.minimum(lo, 0.0), ew.maximum(hi, 0.0)  # the range must hold 0 exactly
    # hi/n - lo/n, not (hi - lo)/n: the difference of two huge values overflows
    scale = ew.maximum((hi / (qmax - qmin) - lo / (qmax - qmin)).astype(_dt.fp32), TINY)
    zp = ew.round(qmin - lo / scale).clip(qmin, qmax).astype(_dt.int32)
    return scale, zp


def _codes(s, xg, scale, zp, symmetric):
    """Codes of `xg` (grouped view when per group) for given scale/zero point."""
    if s.kind == "fp8":
        y = xg / scale
        # clip finite overflow to +-max; NaN/Inf pass through (fp8 codes exist for them)
        return ew.where(ew.isfinite(y), y.clip(-s.fmax, s.fmax), y).astype(s.code_dtype)
    qmin, qmax = s.qrange(symmetric)
    q = ew.round(xg / scale)
    if zp is not None:
        q = q + zp
    return q.clip(qmin, qmax).astype(_dt.int8 if s.bits == 8 or symmetric else _dt.uint8)


def _pack4(q):
    """(..., n) int8/uint8 codes -> (..., n // 2) uint8, element 2i in the low nibble."""
    xp = q.device.backend.xp
    from ..ops._dispatch import apply_op

    def fwd(b):
        lo, hi = b[..., 0::2].view(xp.uint8) & 0xF, b[..., 1::2].view(xp.uint8) & 0xF
        return (lo | (hi << 4)).astype(xp.uint8)
    return apply_op("pack_int4", (q,), fwd, _dt.uint8, q.device)


def unpack4(packed, signed):
    """(..., n // 2) uint8 -> (..., n) int8 codes (sign-extended when `signed`)."""
    xp = packed.device.backend.xp
    from ..ops._dispatch import apply_op

    def fwd(b):
        out = xp.empty(b.shape[:-1] + (b.shape[-1] * 2,), dtype=xp.int8)
        lo, hi = (b & 0xF).astype(xp.int8), (b >> 4).astype(xp.int8)
        if signed:  # nibble 8..15 -> -8..-1
            lo, hi = (lo ^ 8) - 8, (hi ^ 8) - 8
        out[..., 0::2], out[..., 1::2] = lo, hi
        return out
    return apply_op("unpack_int4", (packed,), fwd, _dt.int8, packed.device)


def quantize(x, scheme="int8_per_channel", axis=None, group_size=None, symmetric=True,
             observer=None):
    """Quantize a floating tensor into a `QuantizedTensor` (see the module docstring
    for the schemes). `observer`: a calibrated `tessera.precision.observers` object
    whose range replaces the range of `x` (values outside it saturate).

    The reference is the textbook formula in float64: q = clip(rint(x / s) + zp),
    s = max|x| / qmax per tensor/channel/group; every element is within half a
    step (s / 2) of its dequantized value.

    >>> import tessera as ts
    >>> q = ts.op.quantize(ts.ones((4, 8)), scheme="int8_per_tensor")
    >>> float(ts.max(q.dequantize()))
    1.0
    """
    from ..ops._dispatch import to_tensor
    x = to_tensor("quantize", x)
    if observer is not None:
        scheme, axis, group_size, symmetric = (observer.scheme, observer.axis,
                                               observer.group_size, observer.symmetric)
    s, ax, gs = resolve("quantize", x, scheme, axis, group_size, symmetric)
    with no_grad():
        xf = x if x.dtype in (_dt.fp32, _dt.fp64) else x.astype(_dt.fp32)
        xg = _grouped(xf, gs) if gs else xf
        axes = _reduce_axes(s, xf.ndim, ax)
        if observer is not None:
            lo, hi = observer.range(xg.shape, axes, x.device)
        elif s.kind == "fp8":  # the scale comes from the finite values only
            fin = ew.isfinite(xg)
            lo, hi = None, rd.max(ew.where(fin, xg.abs(), 0.0), axis=axes, keepdims=True)
            if STATE.check_numerics and not bool(rd.all(fin)):
                _check_finite("quantize", scheme, x, rd.sum(xg))
        elif symmetric:
            lo, hi = None, rd.max(xg.abs(), axis=axes, keepdims=True)
        else:
            lo, hi = rd.min(xg, axis=axes, keepdims=True), rd.max(xg, axis=axes, keepdims=True)
        if s.kind == "int":
            _check_finite("quantize", scheme, x, hi if lo is None else hi + lo)
            if observer is not None:
                _check_finite("quantize", scheme, x, rd.sum(xg))
        scale, zp = qparams(s, lo, hi, symmetric)
        codes = _codes(s, xg, scale, zp, symmetric)
        if gs:
            codes = codes.reshape(x.shape)
            scale = scale.reshape(scale.shape[:-1])
            zp = zp.reshape(zp.shape[:-1]) if zp is not None else None
        if s.bits == 4:
            codes = _pack4(codes)
        return QuantizedTensor(codes.realize(), scale.realize(),
                               None if zp is None else zp.realize(), s.name, ax, gs, x.dtype,
                               tuple(x.shape), symmetric)


def dequantize(q, dtype=None):
    """The float tensor a `QuantizedTensor` stands for, in `dtype` (default: the
    dtype it was quantized from): (q - zero_point) * scale."""
    if not isinstance(q, QuantizedTensor):
        raise DTypeError(f"[dequantize] expects a QuantizedTensor, got {type(q).__name__}")
    return q.dequantize(dtype)


class QuantizedTensor:
    """Quantized data with its scales: `data` (int8 codes, uint8 nibble pairs for
    int4, or fp8), `scale` (fp32, broadcastable to the grouped data), `zero_point`
    (int32 or None), `scheme`, `axis`, `group_size`, `dtype` (the original dtype) and
    `shape` (the logical shape)."""

    __slots__ = ("data", "scale", "zero_point", "scheme", "axis", "group_size", "dtype", "shape",
                 "symmetric")

    def __init__(self, data, scale, zero_point, scheme, axis, group_size, dtype, shape,
                 symmetric=True):
        self.data, self.scale, self.zero_point = data, scale, zero_point
        self.scheme, self.axis, self.group_size = scheme, axis, group_size
        self.dtype, self.shape, self.symmetric = _dt.get_dtype(dtype), tuple(shape), symmetric

    @property
    def device(self):
        return self.data.device

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def nbytes(self):
        """Bytes held: codes + scales + zero points."""
        return sum(t.nbytes for t in (self.data, self.scale, self.zero_point) if t is not None)

    def int_repr(self):
        """The codes, unpacked (int8 for int schemes; fp8 data as is)."""
        if SCHEMES[self.scheme].bits == 4:
            return unpack4(self.data, self.symmetric)
        return self.data

    def dequantize(self, dtype=None):
        dt = self.dtype if dtype is None else _dt.get_dtype(dtype)
        gs = self.group_size
        with no_grad():
            q = self.int_repr()
            if gs:
                q = _grouped(q, gs)
            v = q.astype(_dt.fp32)
            if self.zero_point is not None:
                zp = self.zero_point.reshape(self.zero_point.shape + (1,)) if gs else self.zero_point
                v = v - zp
            v = v * (self.scale.reshape(self.scale.shape + (1,)) if gs else self.scale)
            if gs:
                v = v.reshape(self.shape)
            return v if dt is _dt.fp32 else v.astype(dt)

    def to(self, device):
        mv = lambda t: None if t is None else t.to(device)  # noqa: E731
        return QuantizedTensor(mv(self.data), mv(self.scale), mv(self.zero_point), self.scheme,
                               self.axis, self.group_size, self.dtype, self.shape, self.symmetric)

    @property
    def T(self):
        """Transpose of a 2-D per-tensor/per-channel tensor (the scale axis moves with it)."""
        if self.ndim != 2 or self.group_size:
            raise ShapeError(f"[QuantizedTensor.T] needs a 2-D per-tensor/per-channel tensor; got "
                             f"scheme {self.scheme} of shape {self.shape}")
        sc = mv.permute_dims(self.scale, (1, 0)) if self.scale.ndim == 2 else self.scale
        zp = self.zero_point
        zp = mv.permute_dims(zp, (1, 0)) if zp is not None and zp.ndim == 2 else zp
        return QuantizedTensor(mv.permute_dims(self.data, (1, 0)), sc, zp, self.scheme,
                               None if self.axis is None else 1 - self.axis, None, self.dtype,
                               self.shape[::-1], self.symmetric)

    mT = T

    def __repr__(self):
        extra = (f", axis={self.axis}" if self.axis is not None and not self.group_size else "") + \
            (f", group_size={self.group_size}" if self.group_size else "") + \
            ("" if self.symmetric else ", asymmetric")
        return (f"QuantizedTensor(shape={self.shape}, scheme={self.scheme}{extra}, "
                f"dtype={self.dtype.name}, nbytes={self.nbytes}, device={self.device})")

    def save(self, path):
        save(self, path)

    @staticmethod
    def load(path, device=None):
        return load(path, device)


def _raw(t):
    """Host bytes of a tensor (bf16/fp8 as their bit patterns, which .npz can store)."""
    a = np.ascontiguousarray(t.numpy())
    return a.view(np.uint8) if a.dtype.kind == "V" or t.dtype.name.startswith(("bf16", "fp8")) else a


def save(q, path):
    """Write a QuantizedTensor to an .npz file (codes, scales, zero points, metadata)."""
    if not isinstance(q, QuantizedTensor):
        raise DTypeError(f"[quantize.save] expects a QuantizedTensor, got {type(q).__name__}")
    meta = {"scheme": q.scheme, "axis": q.axis, "group_size": q.group_size, "dtype": q.dtype.name,
            "shape": list(q.shape), "symmetric": q.symmetric, "data_dtype": q.data.dtype.name,
            "data_shape": list(q.data.shape), "version": 1}
    arrays = {"data": _raw(q.data), "scale": q.scale.numpy()}
    if q.zero_point is not None:
        arrays["zero_point"] = q.zero_point.numpy()
    with open(path, "wb") as f:
        np.savez(f, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)


def load(path, device=None):
    """Read a QuantizedTensor written by `save`."""
    from ..ops.creation import asarray
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        ddt = _dt.get_dtype(meta["data_dtype"])
        raw = z["data"]
        data = raw.view(ddt.np_storage).reshape(meta["data_shape"]) if raw.dtype == np.uint8 and \
            ddt.np_storage != np.uint8 else raw
        zp = asarray(z["zero_point"], device=device) if "zero_point" in z.files else None
        return QuantizedTensor(asarray(data, dtype=ddt, device=device),
                               asarray(z["scale"], device=device), zp, meta["scheme"], meta["axis"],
                               meta["group_size"], meta["dtype"], meta["shape"], meta["symmetric"])
