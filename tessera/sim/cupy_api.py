"""The simulated `cupy` module: what tessera calls of CuPy's namespace, over NumPy.

Array creation puts memory in guarded allocations (see memory.py); CuPy's own
routines and ufuncs (which tessera uses where it has no kernel of its own) run
as the NumPy function of the same name on the unwrapped arrays and wrap their
results, refusing NumPy arrays as operands as CuPy does. `RawModule` and
`RawKernel` compile and run the real kernel source (rawmodule.py).
"""
from __future__ import annotations

import numpy as np

from . import cuda  # noqa: F401  - cupy.cuda
from .ndarray import check_dtype, copy_of, ndarray, unwrap, unwrap_operand, wrap
from .rawmodule import RawKernel, RawModule  # noqa: F401

__version__ = "14.0.0+tessera.sim"

for _t in ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64", "complex64", "complex128", "intp", "uintp",
           "dtype", "finfo", "iinfo", "newaxis", "pi", "e", "inf", "nan", "integer", "floating",
           "complexfloating", "number", "generic", "signedinteger", "unsignedinteger", "bool"):
    globals()[_t] = getattr(np, _t)


def _shares(r, inputs):
    for a in inputs:
        if np.may_share_memory(r, a._mem.buf):
            return a._mem
    return None


def _sim_inputs(obj, acc):
    if isinstance(obj, ndarray):
        acc.append(obj)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _sim_inputs(v, acc)
    return acc


def _wrap_like(r, inputs):
    """Wrap a NumPy result; a view of an input keeps that input's allocation."""
    if isinstance(r, np.ndarray) and inputs:
        mem = _shares(r, inputs)
        if mem is not None:
            check_dtype(r.dtype)
            return ndarray._wrap(r, mem)
    if isinstance(r, tuple):
        return tuple(_wrap_like(x, inputs) for x in r)
    if isinstance(r, list):
        return [_wrap_like(x, inputs) for x in r]
    return wrap(r)


def _emulated(fn, name):
    def call(*args, **kwargs):
        if "dtype" in kwargs:
            check_dtype(kwargs["dtype"])
        ins = _sim_inputs(args, [])
        for v in kwargs.values():
            _sim_inputs(v, ins)
        a = [unwrap_operand(x) for x in args]
        k = {key: unwrap_operand(v) for key, v in kwargs.items()}
        return _wrap_like(fn(*a, **k), ins)
    call.__name__ = name
    call.__qualname__ = name
    return call


class ufunc:  # noqa: N801 - CuPy's name
    """A NumPy ufunc over simulated arrays, with reduce/accumulate/at/outer."""

    def __init__(self, uf):
        self._uf = uf
        self.__name__ = uf.__name__
        self.nin, self.nout, self.nargs = uf.nin, uf.nout, uf.nargs
        self.reduce = _emulated(uf.reduce, f"{uf.__name__}.reduce")
        self.accumulate = _emulated(uf.accumulate, f"{uf.__name__}.accumulate")
        self.outer = _emulated(uf.outer, f"{uf.__name__}.outer")
        self._call = _emulated(uf, uf.__name__)

    def __call__(self, *args, **kwargs):
        out = kwargs.get("out")
        r = self._call(*args, **kwargs)
        return out if out is not None and not isinstance(out, tuple) else r

    def at(self, a, indices, b=None):
        if not isinstance(a, ndarray):
            raise TypeError(f"Unsupported type {type(a)}")
        args = (unwrap(indices),) if b is None else (unwrap(indices), unwrap_operand(b))
        self._uf.at(a._a, *args)

    def __repr__(self):
        return f"<ufunc '{self.__name__}' (tessera simulated CuPy)>"


_cache: dict = {}


def __getattr__(name):
    """CuPy functions tessera has no special case for: NumPy's, emulated."""
    fn = _cache.get(name)
    if fn is None:
        target = getattr(np, name, None)
        if target is None or name.startswith("_"):
            raise AttributeError(f"module 'cupy' (tessera simulated) has no attribute {name!r}")
        if isinstance(target, np.ufunc):
            fn = ufunc(target)
        elif callable(target) and not isinstance(target, type):
            fn = _emulated(target, name)
        else:
            return target
        _cache[name] = fn
    return fn


# ---- creation: guarded device allocations ----
def empty(shape, dtype=float, order="C"):
    return ndarray(shape, dtype, order=order)


def zeros(shape, dtype=float, order="C"):
    a = ndarray(shape, dtype, order=order)
    a._a[...] = 0
    return a


def ones(shape, dtype=float, order="C"):
    a = ndarray(shape, dtype, order=order)
    a._a[...] = 1
    return a


def full(shape, fill_value, dtype=None, order="C"):
    v = unwrap(fill_value)
    a = ndarray(shape, dtype if dtype is not None else np.asarray(v).dtype, order=order)
    a._a[...] = v
    return a


def _like(a, dtype, shape):
    return (a.shape if shape is None else shape), (a.dtype if dtype is None else dtype)


def empty_like(a, dtype=None, order="K", subok=None, shape=None):
    s, d = _like(a, dtype, shape)
    return empty(s, d)


def zeros_like(a, dtype=None, order="K", subok=None, shape=None):
    s, d = _like(a, dtype, shape)
    return zeros(s, d)


def ones_like(a, dtype=None, order="K", subok=None, shape=None):
    s, d = _like(a, dtype, shape)
    return ones(s, d)


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    s, d = _like(a, dtype, shape)
    return full(s, fill_value, d)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, blocking=False):
    if isinstance(obj, ndarray):
        r = obj.astype(dtype if dtype is not None else obj.dtype, copy=copy is not False)
    else:
        check_dtype(dtype)
        r = copy_of(np.array(unwrap(obj), dtype=dtype, ndmin=ndmin), "C" if order in ("K", "A") else order)
    if ndmin > r.ndim:
        r = r.reshape((1,) * (ndmin - r.ndim) + r.shape)
    return r


def asarray(a, dtype=None, order=None, blocking=False):
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    check_dtype(dtype)
    return copy_of(np.asarray(unwrap(a), dtype=dtype), order or "C")


def asanyarray(a, dtype=None, order=None):
    return asarray(a, dtype, order)


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        a = asarray(a)
    dt = a.dtype if dtype is None else check_dtype(dtype)
    if a.ndim == 0:  # CuPy (and NumPy) return 1-d for 0-d input (TRIAGE A13)
        return copy_of(a._a.reshape(1).astype(dt))
    if a.flags.c_contiguous and dt == a.dtype:
        return a
    return copy_of(np.ascontiguousarray(a._a, dtype=dt))


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def broadcast_to(a, shape):
    # CuPy's broadcast views are writable (NumPy's are read-only)
    v = np.broadcast_to(a._a, shape)
    return ndarray._wrap(np.lib.stride_tricks.as_strided(a._a, v.shape, v.strides), a._mem)


def from_dlpack(x, device=None, copy=None):
    """Import a DLPack producer on a simulated device (CUDA/ROCm capsules only)."""
    from ..interop import _capsule as C
    if isinstance(x, ndarray):
        return x
    dev = getattr(x, "__dlpack_device__", None)
    if dev is not None:
        typ, idx = dev()
        if typ not in (C.KDL_CUDA, C.KDL_ROCM, C.KDL_CUDA_MANAGED):
            raise BufferError(f"the DLPack producer is on device type {typ}, not a CUDA device "
                              "(cupy.from_dlpack imports device memory)")
    cap = x.__dlpack__() if hasattr(x, "__dlpack__") else x
    p = C.peek(cap)
    if p.device_type not in (C.KDL_CUDA, C.KDL_ROCM, C.KDL_CUDA_MANAGED):
        raise BufferError(f"the DLPack capsule is on device type {p.device_type}, not a CUDA device")
    live = C._LIVE.get(p.managed_addr)
    owner = live[2] if live else None
    if not isinstance(owner, ndarray):
        raise BufferError("[sim] a CUDA DLPack capsule whose memory the simulated GPU did not allocate")
    import ctypes
    t = (C.DLManagedTensorVersioned if p.versioned else C.DLManagedTensor).from_address(p.managed_addr).dl_tensor
    shape = tuple(ctypes.cast(t.shape, ctypes.POINTER(ctypes.c_int64))[i] for i in range(t.ndim))
    strides = tuple(ctypes.cast(t.strides, ctypes.POINTER(ctypes.c_int64))[i] for i in range(t.ndim)) \
        if t.strides else None
    npdt = _DL_DTYPES.get((p.code, p.bits))
    if npdt is None:
        raise BufferError(f"[sim] DLPack dtype code {p.code} bits {p.bits} has no CuPy dtype")
    npdt = np.dtype(npdt)
    from .ndarray import MemoryPointer
    arr = ndarray(shape, npdt, memptr=MemoryPointer(t.data + t.byte_offset, owner._mem.device, owner._mem),
                  strides=None if strides is None else tuple(s * npdt.itemsize for s in strides))
    ctypes.pythonapi.PyCapsule_SetName(ctypes.py_object(cap), C.USED_VERSIONED if p.versioned else C.USED_LEGACY)
    return arr


def _dl_dtypes():
    from ..interop import _capsule as C
    d = {(C.KDL_BOOL, 8): np.bool_, (C.KDL_FLOAT, 16): np.float16, (C.KDL_FLOAT, 32): np.float32,
         (C.KDL_FLOAT, 64): np.float64, (C.KDL_COMPLEX, 64): np.complex64, (C.KDL_COMPLEX, 128): np.complex128}
    for b in (8, 16, 32, 64):
        d[(C.KDL_INT, b)] = np.dtype(f"i{b // 8}")
        d[(C.KDL_UINT, b)] = np.dtype(f"u{b // 8}")
    try:
        import ml_dtypes
        d[(C.KDL_BFLOAT, 16)] = ml_dtypes.bfloat16
    except ImportError:  # pragma: no cover
        pass
    return d


_DL_DTYPES = _dl_dtypes()


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


def get_default_pinned_memory_pool():
    return _POOL


def get_array_module(*args):
    import sys
    return sys.modules[__name__]


def isscalar(x):
    return np.isscalar(x)


# ---- submodules ----
class _Namespace:
    """A NumPy submodule (fft, linalg, random) over simulated arrays."""

    def __init__(self, np_module, keep_precision=False):
        self._np = np_module
        self._keep = keep_precision

    def __getattr__(self, name):
        target = getattr(self._np, name)
        if not callable(target) or isinstance(target, type):
            return target
        call = _emulated(target, name)
        if self._keep and name not in ("fftfreq", "rfftfreq", "fftshift", "ifftshift"):
            call = _single_precision(call)
        setattr(self, name, call)
        return call


def _single_precision(call):
    """numpy.fft always computes in double; cuFFT keeps complex64 for float32 input."""
    def f(a, *args, **kwargs):
        r = call(a, *args, **kwargs)
        if isinstance(a, ndarray) and a.dtype in (np.float32, np.complex64, np.float16):
            return r.astype(np.complex64 if r.dtype.kind == "c" else np.float32)
        return r
    f.__name__ = call.__name__
    return f


fft = _Namespace(np.fft, keep_precision=True)
linalg = _Namespace(np.linalg)


class _Generator:
    def __init__(self, seed):
        self._g = np.random.default_rng(seed)

    def __getattr__(self, name):
        return _emulated(getattr(self._g, name), name)


class _Random(_Namespace):
    def default_rng(self, seed=None):
        return _Generator(unwrap(seed))


random = _Random(np.random)
