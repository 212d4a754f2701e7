"""The CUDA backend (also CuPy's ROCm build): CuPy arrays as storage, tessera's
own kernels (`tessera/kernels`) on the hot paths.

CuPy has no bf16 or fp8 dtypes, so those are stored as 16/8-bit unsigned words;
`compute` widens them to fp32 with tessera's cast kernel for the few ops that
fall back to CuPy routines, and `store` rounds back (nearest even, bit-exact with
ml_dtypes). Matmul goes through `launchers.matmul_auto`, which picks tessera's
tiled kernel or cuBLAS per shape bucket by measurement and records the choice.
Reductions are brought to the layouts the reduction kernels take ("rows": the
reduced axes innermost; "cols": one contiguous block of reduced axes between an
outer and an inner block) with at most one permute copy. Elementwise work goes
through the fusion buffer (every launch costs microseconds, so it fuses at any
size); with fusion off, single elementwise ops run as CuPy ufuncs.

Nothing here runs without a GPU; the launch geometry and kernels are tested
(geometry in pure Python, kernels compiled through NVRTC/hipcc) on any machine.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from .common import ArrayBackend

_NARROW = (_dt.bf16, _dt.fp8_e4m3, _dt.fp8_e5m2)
_native_bf16: dict = {}


def native_bfloat16(cupy) -> bool:
    """Whether this CuPy makes bfloat16 arrays (CuPy 14 does, with ml_dtypes'
    bfloat16): a feature probe, not a version check."""
    ok = _native_bf16.get(id(cupy))
    if ok is None:
        try:
            cupy.empty(1, _dt.bf16.np_storage)
            ok = _dt.bf16.np_storage is not None
        except Exception:  # TypeError/ValueError: "Unsupported dtype bfloat16"
            ok = False
        _native_bf16[id(cupy)] = ok
    return ok


def cuda_storage(dtype, cupy):
    """The CuPy dtype that stores `dtype`: bf16 natively where CuPy has it, else
    uint16 words; fp8 always uint8 words (no CuPy has float8 arrays)."""
    if dtype is _dt.bf16 and native_bfloat16(cupy):
        return dtype.np_storage
    return dtype.cuda_storage


def _launchers():
    from ..kernels import launchers
    from ..kernels.launchers import matmul, movement, nn, reduce
    return launchers, matmul, movement, nn, reduce


_hint_warned: set = set()


def _warn_hint_once(dtype, tile, why):
    import warnings
    if (dtype, tile) not in _hint_warned:
        _hint_warned.add((dtype, tile))
        warnings.warn(f"[matmul] schedule.hint tile_sizes={list(tile)} cannot run for {dtype} on this "
                      f"device ({why}); using the library's tile for {dtype}", RuntimeWarning, stacklevel=4)


def _forget_backends():
    """Another CuPy was handed over (cupy_source.use): backends built on the old one go."""
    from ..device import Device
    CudaBackend._instances.clear()
    for dev in list(Device._interned.values()):
        if dev.type == "cuda":
            dev._backend = None


class CudaBackend(ArrayBackend):
    name = "cuda"
    FUSE_MIN_SIZE = 1
    FUSED_RUNNER = "run_cuda"
    _instances: dict = {}

    @classmethod
    def for_device(cls, index):
        b = cls._instances.get(index)
        if b is None:
            from .cupy_source import cupy, cupyx
            b = cls._instances[index] = cls(index, cupy(), cupyx())
        return b

    def __init__(self, index, cupy, cupyx=None):
        """`cupy`: the CuPy module this backend runs on (the installed CuPy, or
        tessera.sim's stand-in; `cupy_source` picks, nothing else asks)."""
        super().__init__(cupy)
        self.index = index
        self.cupy = cupy
        self.cupyx = cupyx
        self._storage = {d: cuda_storage(d, cupy) for d in _dt.ALL_DTYPES}

    # -- storage ----------------------------------------------------------------
    def storage_dtype(self, dtype):
        return self._storage[dtype]

    def compute_dtype(self, dtype):
        return np.dtype(np.float32) if dtype in _NARROW else self._storage[dtype]

    def compute(self, buf, dtype):
        if dtype in _NARROW:
            from ..kernels.launchers.movement import cast
            return cast(self._contiguous(buf), dtype.name, "fp32")
        return buf

    def store(self, arr, dtype):
        if dtype in _NARROW:
            from ..kernels.launchers.movement import cast
            # one rounding from whatever the values are stored in (cast.cu rounds
            # fp64 to bf16/fp8 directly; going through fp32 would round twice)
            from ..kernels.launchers._runtime import dtype_name
            return cast(self._contiguous(arr), dtype_name(arr), dtype.name)
        sd = self._storage[dtype]
        return arr if arr.dtype == sd else arr.astype(sd)

    def cast(self, buf, src, dst):
        if src.kind == "c" or dst.kind == "c":
            # cast.cu has no complex types: complex -> real keeps the real part (as
            # NumPy), real -> complex widens; narrow dtypes go through store/compute
            x = self.compute(buf, src)
            if dst.kind == "b":
                return x != 0
            if src.kind == "c" and dst.kind != "c":
                return self.store(x.real.astype(self.compute_dtype(dst)), dst)
            return x.astype(self._storage[dst])
        from ..kernels.launchers.movement import cast
        return cast(self._contiguous(buf), src.name, dst.name)

    def _contiguous(self, buf):
        """A C-contiguous array of the same shape: CuPy's (and NumPy's)
        ascontiguousarray turns a 0-d array into shape (1,) (TRIAGE A13)."""
        if buf.flags.c_contiguous:
            return buf
        return self.xp.ascontiguousarray(buf) if buf.ndim else buf.copy()

    def to_numpy(self, buf, dtype):
        host = self.cupy.asnumpy(buf)
        if dtype in _NARROW and host.dtype != dtype.np_storage:
            host = host.view(dtype.np_storage)
        return host

    def from_numpy(self, arr, dtype):
        if dtype in _NARROW and self._storage[dtype] != dtype.np_storage:
            arr = np.ascontiguousarray(arr).view(self._storage[dtype])
        with self.cupy.cuda.Device(self.index):
            return self.cupy.asarray(arr)

    def synchronize(self):
        self.cupy.cuda.get_current_stream().synchronize()

    # -- kernels ------------------------------------------------------------------
    def matmul(self, a, b, dtype):
        from ..kernels.launchers.matmul import matmul_auto
        from ..kernels.launchers.registry import MATMUL_DTYPES
        if dtype.name not in MATMUL_DTYPES or a.ndim > 3 or b.ndim > 3:
            if dtype.name in MATMUL_DTYPES and a.ndim == b.ndim:
                # flatten leading batch dims (after broadcasting) into one
                xp = self.xp
                batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
                a3 = xp.ascontiguousarray(xp.broadcast_to(a, batch + a.shape[-2:])).reshape(-1, *a.shape[-2:])
                b3 = xp.ascontiguousarray(xp.broadcast_to(b, batch + b.shape[-2:])).reshape(-1, *b.shape[-2:])
                return self.matmul(a3, b3, dtype).reshape(batch + (a.shape[-2], b.shape[-1]))
            return super().matmul(a, b, dtype)
        ta, a = self._as_operand(a)
        tb, b = self._as_operand(b)
        from .._config import STATE
        hint = STATE.tile_hint
        if hint is not None and hint.tile_sizes is not None and len(hint.tile_sizes) == 3:
            from ..kernels.launchers.matmul import hint_refusal, matmul as tiled
            tile = tuple(hint.tile_sizes[:3])
            why = hint_refusal(dtype.name, tile)
            if why is None:
                return tiled(a, b, trans_a=ta, trans_b=tb, tile=tile, dtype=dtype.name)
            # A hint is advice: one that fits some kernel (schedule.hint checked that)
            # but not this dtype's on this device runs the library's choice, said once.
            _warn_hint_once(dtype.name, tile, why)
        return matmul_auto(a, b, trans_a=ta, trans_b=tb, dtype=dtype.name)

    def _as_operand(self, x):
        """A transposed view is passed as (trans=True, contiguous storage): no copy."""
        if x.flags.c_contiguous:
            return False, x
        xt = x.swapaxes(-1, -2)
        if xt.flags.c_contiguous:
            return True, xt
        return False, self.xp.ascontiguousarray(x)

    def reduce(self, name, buf, dtype, axes, keepdims, out_dtype, **kw):
        from ..kernels.launchers.movement import permute_copy
        from ..kernels.launchers.reduce import reduce as kreduce
        from ..kernels.launchers.registry import REDUCE_OPS
        if name not in REDUCE_OPS or dtype.name not in REDUCE_OPS[name][1] or buf.ndim == 0:
            return super().reduce(name, buf, dtype, axes, keepdims, out_dtype, **kw)
        x = buf
        nd = x.ndim
        if x.size == 0:  # nothing to launch: the reduction's identity (or NaN) in NumPy's shape (TRIAGE A6)
            return super().reduce(name, buf, dtype, axes, keepdims, out_dtype, **kw)
        keep = [i for i in range(nd) if i not in axes]
        oshape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keepdims \
            else tuple(x.shape[i] for i in keep)
        red = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        block = list(axes) == list(range(axes[0], axes[-1] + 1)) if axes else True
        ddof = int(kw.get("correction", 0))
        if x.flags.c_contiguous and block and axes and axes[-1] == nd - 1:
            r = kreduce(x.reshape(-1, red), name, "rows", ddof=ddof, dtype=dtype.name,
                        out_dtype=out_dtype.name)
        elif x.flags.c_contiguous and block and axes:
            outer = int(np.prod(x.shape[:axes[0]]))
            inner = int(np.prod(x.shape[axes[-1] + 1:]))
            r = kreduce(x.reshape(outer, red, inner), name, "cols", ddof=ddof,
                        dtype=dtype.name, out_dtype=out_dtype.name)
        else:
            perm = keep + list(axes)
            xc = permute_copy(x, perm, dtype=dtype.name)
            r = kreduce(xc.reshape(-1, red), name, "rows", ddof=ddof, dtype=dtype.name,
                        out_dtype=out_dtype.name)
        return r.reshape(oshape)

    def arg_reduce(self, name, buf, dtype, axis, keepdims):
        if axis is None:
            r = self.reduce(name, buf.reshape(-1), dtype, (0,), False, _dt.int64)
            return r.reshape((1,) * buf.ndim) if keepdims else r
        return self.reduce(name, buf, dtype, (axis,), keepdims, _dt.int64)

    def softmax(self, buf, dtype, axis, log):
        from ..kernels.launchers.nn import softmax
        x = self.xp.moveaxis(buf, axis, -1)
        shape = x.shape
        y = softmax(self.xp.ascontiguousarray(x).reshape(-1, shape[-1]), log=log, dtype=dtype.name)
        return self.xp.moveaxis(y.reshape(shape), -1, axis)

    def layer_norm_forward(self, buf, weight, bias, dtype, n_axes, eps):
        """The one-pass layernorm kernel over the flattened last `n_axes` axes."""
        from ..kernels.launchers.nn import layer_norm_forward
        if dtype.name not in ("fp64", "fp32", "fp16", "bf16"):
            return super().layer_norm_forward(buf, weight, bias, dtype, n_axes, eps)
        xp = self.xp
        lead = buf.shape[:buf.ndim - n_axes]
        cols = int(np.prod(buf.shape[buf.ndim - n_axes:]))
        x2 = xp.ascontiguousarray(buf).reshape(-1, cols)
        w = None if weight is None else xp.ascontiguousarray(weight).reshape(cols)
        b = None if bias is None else xp.ascontiguousarray(bias).reshape(cols)
        y, mean, rstd = layer_norm_forward(x2, w, b, eps, dtype=dtype.name)
        kshape = lead + (1,) * n_axes
        return y.reshape(buf.shape), mean.reshape(kshape), rstd.reshape(kshape)

    def copy(self, buf):
        """Strided (non-contiguous) sources go through tessera's N-d strided-copy kernel."""
        if buf.flags.c_contiguous or buf.ndim > 8 or buf.size == 0:
            return buf.copy()
        from ..kernels.launchers.movement import permute_copy
        return permute_copy(buf)

    def cumsum(self, buf, dtype, axis, out_dtype):
        """The scan kernel runs along the last axis of a contiguous 2-D view."""
        from ..kernels.launchers.reduce import cumsum
        if dtype.kind == "c":
            return super().cumsum(buf, dtype, axis, out_dtype)
        xp = self.xp
        x = xp.ascontiguousarray(xp.moveaxis(buf, axis, -1))
        shape = x.shape
        r = cumsum(x.reshape(-1, shape[-1]) if x.ndim != 1 else x, dtype=dtype.name)
        return xp.moveaxis(r.reshape(shape), -1, axis)

    def int8_gemm(self, a, b):
        from ..kernels.launchers.qgemm import int8_gemm
        return int8_gemm(a, b.T, out_dtype="int32")

    def weight_only_gemm(self, xbuf, xdt, q, bufs, trans):
        """qgemm.cu's weight-only kernel dequantizes tiles as it loads them; it takes
        W stored (N, K) with int8/int4 codes and per-row or per-group scales."""
        from ..kernels.launchers.registry import QGEMM_WO_DTYPES
        if (trans and xdt.name in QGEMM_WO_DTYPES and q.scheme not in ("fp8_e4m3", "fp8_e5m2")
                and (q.group_size or q.axis in (0, None))):
            from ..kernels.launchers.qgemm import weight_only_gemm
            return weight_only_gemm(xbuf, q, bufs, xdt.name)
        return super().weight_only_gemm(xbuf, xdt, q, bufs, trans)

    def scatter_add(self, target, index, values):
        self.cupyx.scatter_add(target, index, values)

    def grouped_matmul(self, x, w, offsets, dtype, trans_w=False):
        """All groups in one launch of grouped_matmul.cu (the MoE expert step)."""
        from ..kernels.launchers.grouped_matmul import grouped_matmul
        from ..kernels.launchers.registry import GROUPED_DTYPES
        if dtype.name not in GROUPED_DTYPES:
            return super().grouped_matmul(x, w, offsets, dtype, trans_w)
        return grouped_matmul(x, w, offsets, trans_w=trans_w, dtype=dtype.name)

    def grouped_matmul_wgrad(self, x, dy, offsets, dtype):
        from ..kernels.launchers.grouped_matmul import grouped_matmul_wgrad
        from ..kernels.launchers.registry import GROUPED_DTYPES
        if dtype.name not in GROUPED_DTYPES:
            return super().grouped_matmul_wgrad(x, dy, offsets, dtype)
        return grouped_matmul_wgrad(x, dy, offsets, dtype=dtype.name)


def _register():
    from . import cupy_source
    cupy_source.on_switch(_forget_backends)


_register()
