"""The simulated `cupy.ndarray`: a NumPy array standing in for device memory,
with CuPy's rules where they differ from NumPy's.

What it refuses, as CuPy does, so that host/device mix-ups fail on a CPU too:
implicit conversion to NumPy (`np.asarray(x)`, `x.__array__()`), `.ctypes`,
NumPy arrays as operands, float(x)/int(x) of arrays with more than one element,
and float8 dtypes (CuPy 14 has native bfloat16 arrays, no float8). What it
keeps from CuPy: 0-d results are 0-d arrays (never NumPy scalars), every array
is writable (broadcast views too), zero-size arrays have zero strides,
`ascontiguousarray` of a 0-d array is 1-d, `__dlpack_device__` reports CUDA
(or ROCm), NumPy functions called on it return simulated arrays
(`__array_ufunc__`, `__array_function__`).
"""
from __future__ import annotations

import operator

import numpy as np

from . import memory

_NO_FP8 = None
# NumPy attributes CuPy arrays do not have (host memory, NumPy-only views)
_NOT_CUPY = frozenset({"ctypes", "getfield", "setfield", "tofile", "dump", "dumps", "byteswap",
                       "newbyteorder", "resize", "tobytes", "tostring", "setflags"})


def _fp8_dtypes():
    global _NO_FP8
    if _NO_FP8 is None:
        try:
            import ml_dtypes
            _NO_FP8 = frozenset(np.dtype(getattr(ml_dtypes, n)) for n in dir(ml_dtypes)
                                if n.startswith("float8") or n.startswith("float4") or n.startswith("float6"))
        except ImportError:  # pragma: no cover
            _NO_FP8 = frozenset()
    return _NO_FP8


def check_dtype(dtype):
    """CuPy 14's dtype set: NumPy's, plus ml_dtypes' bfloat16; no float8/6/4."""
    if dtype is None:
        return None
    dt = np.dtype(dtype)
    if dt.name == "bfloat16":  # ml_dtypes' types have kind "V"; CuPy 14 takes this one
        return dt
    if dt in _fp8_dtypes() or dt.kind in "OUSVMm":
        raise ValueError(f"Unsupported dtype {dt}")
    return dt


class Flags:
    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, a, owndata):
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = owndata

    def __getitem__(self, k):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[k]


class MemoryPointer:
    """`x.data`: the device address and device id, as cupy.cuda.MemoryPointer."""
    __slots__ = ("ptr", "device_id", "mem")

    def __init__(self, ptr, device_id, mem):
        self.ptr, self.device_id, self.mem = ptr, device_id, mem

    @property
    def device(self):
        from .cuda import Device
        return Device(self.device_id)


def current_device():
    from .cuda import _state
    return _state.current


class ndarray:  # noqa: N801 - CuPy's name
    """A simulated device array. `_a` is the NumPy view, `_mem` its allocation."""

    __slots__ = ("_a", "_mem", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        dt = check_dtype(dtype)
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        if memptr is not None:  # a view of existing device memory (DLPack import)
            base = memptr.mem
            raw = base.buf if base.guarded else base.buf.reshape(-1).view(np.uint8)
            off = memptr.ptr - raw.__array_interface__["data"][0]
            self._a = np.ndarray(tuple(shape), dt, buffer=raw, offset=off, strides=strides)
            self._mem = base
            return
        self._mem, self._a = memory.fresh(shape, dt, current_device(), order)

    # ---- construction helpers ----
    @classmethod
    def _wrap(cls, a, mem):
        self = object.__new__(cls)
        self._a = a
        self._mem = mem
        return self

    # ---- metadata ----
    @property
    def shape(self):
        return self._a.shape

    @shape.setter
    def shape(self, s):
        self._a = self._a.reshape(s)

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self):
        return self._a.ndim

    @property
    def size(self):
        return self._a.size

    @property
    def itemsize(self):
        return self._a.itemsize

    @property
    def nbytes(self):
        return self._a.nbytes

    @property
    def strides(self):
        # CuPy gives zero-size arrays zero strides (TRIAGE A3 came from this)
        return (0,) * self._a.ndim if self._a.size == 0 else self._a.strides

    @property
    def flags(self):
        return Flags(self._a, self._a.base is None or self._a is self._mem.data)

    @property
    def device(self):
        from .cuda import Device
        return Device(self._mem.device)

    @property
    def data(self):
        return MemoryPointer(self._a.__array_interface__["data"][0], self._mem.device, self._mem)

    @property
    def base(self):
        return None

    @property
    def T(self):  # noqa: N802
        return self._view(self._a.T)

    @property
    def mT(self):  # noqa: N802
        return self._view(np.swapaxes(self._a, -1, -2))

    @property
    def real(self):
        return self._view(self._a.real) if self._a.dtype.kind == "c" else self

    @real.setter
    def real(self, v):
        self._a.real = v._a if isinstance(v, ndarray) else unwrap_operand(v)

    @property
    def imag(self):
        return self._view(self._a.imag) if self._a.dtype.kind == "c" else wrap(np.zeros_like(self._a))

    @imag.setter
    def imag(self, v):
        self._a.imag = v._a if isinstance(v, ndarray) else unwrap_operand(v)

    @property
    def ctypes(self):
        raise AttributeError("'cupy.ndarray' object has no attribute 'ctypes' "
                             "(device memory has no host address; tessera simulated CuPy)")

    # ---- the refusals ----
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def _scalar(self, kind):
        if self._a.size != 1:
            raise TypeError(f"only length-1 arrays can be converted to Python scalars ({kind}() of a "
                            f"cupy.ndarray of shape {self._a.shape})")
        return self._a.reshape(()).item()

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __complex__(self):
        return complex(self._scalar("complex"))

    def __index__(self):
        if self._a.ndim != 0 or self._a.dtype.kind not in "iub":
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return int(self._a)

    def __bool__(self):
        if self._a.size != 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous.")
        return bool(self._a.reshape(()).item())

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._a.shape[0]))

    def __repr__(self):
        return "array(" + np.array2string(self._a, separator=", ", prefix="array(") + \
            ("" if self._a.dtype in (np.float64, np.int64, np.bool_) else f", dtype={self._a.dtype}") + ")"

    __str__ = __repr__

    def __reduce__(self):
        return (_rebuild, (self._a.copy(),))

    # ---- host transfers ----
    def get(self, stream=None, order="C", out=None, blocking=True):
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if isinstance(arr, ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        a = np.asarray(arr)
        if a.shape != self._a.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self._a.shape}, new shape: {a.shape}")
        self._a[...] = a

    def item(self, *args):
        return self._a.item(*args)

    def tolist(self):
        return self._a.tolist()

    # ---- views and copies ----
    def _view(self, a):
        return ndarray._wrap(a, self._mem) if np.may_share_memory(a, self._mem.buf) else wrap(a)

    def view(self, dtype=None, type=None):  # noqa: A002
        if dtype is None:
            return self._view(self._a.view())
        return self._view(self._a.view(check_dtype(dtype)))

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self._view(self._a.reshape(shape, order=order))

    def ravel(self, order="C"):
        return self._view(self._a.ravel(order))

    def flatten(self, order="C"):
        return copy_of(self._a.flatten(order))

    def transpose(self, *axes):
        return self._view(self._a.transpose(*axes))

    def swapaxes(self, a, b):
        return self._view(self._a.swapaxes(a, b))

    def squeeze(self, axis=None):
        return self._view(self._a.squeeze(axis))

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return self._view(self._a.diagonal(offset, axis1, axis2))

    def copy(self, order="C"):
        return copy_of(self._a, order)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        dt = check_dtype(dtype)
        if not copy and dt == self._a.dtype:
            return self
        return copy_of(self._a.astype(dt, order=order if order != "A" else "K"), "K")

    def fill(self, value):
        self._a.fill(unwrap(value))

    def __getitem__(self, key):
        r = self._a[unwrap_index(key)]
        if isinstance(r, np.ndarray):
            return self._view(r)
        return wrap(r)

    def __setitem__(self, key, value):
        if isinstance(value, ndarray):
            value = value._a
        self._a[unwrap_index(key)] = value

    # ---- NumPy protocols: NumPy functions on simulated arrays stay simulated ----
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        args = [unwrap_operand(x) for x in inputs]
        if out is not None:
            kwargs["out"] = tuple(unwrap_operand(o) for o in (out if isinstance(out, tuple) else (out,)))
        r = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out if isinstance(out, tuple) and len(out) > 1 else (out[0] if isinstance(out, tuple) else out)
        return wrap(r)

    def __array_function__(self, func, types, args, kwargs):
        from . import cupy_api
        impl = getattr(cupy_api, func.__name__, None)
        if impl is None or not callable(impl):
            return NotImplemented
        return impl(*args, **kwargs)

    def __dlpack_device__(self):
        from .cuda import _state
        return (10 if _state.is_hip else 2, self._mem.device)

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        from ..interop import _capsule as C
        a = self._a
        kind = a.dtype.kind
        if a.dtype.name == "bfloat16":
            code = C.KDL_BFLOAT
        else:
            code = {"b": C.KDL_BOOL, "i": C.KDL_INT, "u": C.KDL_UINT, "f": C.KDL_FLOAT,
                    "c": C.KDL_COMPLEX}[kind]
        dev_type, dev_id = self.__dlpack_device__()
        versioned = max_version is not None and tuple(max_version) >= (1, 0)
        return C.make_capsule(self, a.__array_interface__["data"][0], a.shape,
                              tuple(s // a.itemsize for s in a.strides), code, a.itemsize * 8,
                              dev_type, dev_id, versioned)

    @property
    def __cuda_array_interface__(self):
        a = self._a
        return {"shape": a.shape, "typestr": a.dtype.str, "version": 3,
                "data": (a.__array_interface__["data"][0], False),
                "strides": None if a.flags.c_contiguous else a.strides}

    # ---- reductions and other methods, emulated with NumPy ----
    def __getattr__(self, name):
        fn = getattr(np.ndarray, name, None)
        if fn is None or name.startswith("_") or name in _NOT_CUPY:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")

        def method(*args, **kwargs):
            args = [unwrap_operand(a) for a in args]
            kwargs = {k: unwrap_operand(v) for k, v in kwargs.items()}
            return wrap(getattr(self._a, name)(*args, **kwargs))
        return method


def _rebuild(a):
    return copy_of(a)


# ---- conversions between the simulated and NumPy worlds ----
def wrap(r):
    """A NumPy result as a simulated array (0-d for scalars); tuples elementwise."""
    if isinstance(r, ndarray):
        return r
    if isinstance(r, np.ndarray):
        check_dtype(r.dtype)
        return ndarray._wrap(r, memory.Allocation.adopt(r, current_device()))
    if isinstance(r, np.generic):
        a = np.asarray(r)
        return ndarray._wrap(a, memory.Allocation.adopt(a, current_device()))
    if isinstance(r, tuple):
        return tuple(wrap(x) for x in r)
    if isinstance(r, list):
        return [wrap(x) for x in r]
    return r


def copy_of(a, order="C"):
    """A copy of NumPy array `a` in a fresh guarded device allocation."""
    a = np.asarray(a)
    check_dtype(a.dtype)
    order = "F" if order == "F" or (order in ("K", "A") and a.flags.f_contiguous and not a.flags.c_contiguous) else "C"
    mem, out = memory.fresh(a.shape, a.dtype, current_device(), order, fill=False)
    if a.size:
        out[...] = a
    return ndarray._wrap(out, mem)


def unwrap_operand(x):
    """An operand for NumPy: simulated arrays unwrapped, NumPy arrays refused."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(f"Unsupported type {type(x)}")
    if isinstance(x, (list, tuple)):
        return type(x)(unwrap_operand(v) for v in x)
    return x


def unwrap(x):
    """Simulated arrays unwrapped; anything else (NumPy too) passed on."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (list, tuple)):
        return type(x)(unwrap(v) for v in x)
    return x


def unwrap_index(key):
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, tuple):
        return tuple(k._a if isinstance(k, ndarray) else k for k in key)
    return key


def _binary(op, reflected=False):
    def f(self, other):
        if isinstance(other, np.ndarray):
            raise TypeError(f"Unsupported type {type(other)}")
        if not isinstance(other, (ndarray, int, float, complex, bool, np.generic)):
            return NotImplemented
        o = other._a if isinstance(other, ndarray) else other
        return wrap(op(o, self._a) if reflected else op(self._a, o))
    return f


def _inplace(op):
    def f(self, other):
        if isinstance(other, np.ndarray):
            raise TypeError(f"Unsupported type {type(other)}")
        o = other._a if isinstance(other, ndarray) else other
        op(self._a, o)
        return self
    return f


for _name, _op in [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("truediv", operator.truediv), ("floordiv", operator.floordiv),
                   ("mod", operator.mod), ("pow", operator.pow), ("matmul", operator.matmul),
                   ("and", operator.and_), ("or", operator.or_), ("xor", operator.xor),
                   ("lshift", operator.lshift), ("rshift", operator.rshift),
                   ("lt", operator.lt), ("le", operator.le), ("gt", operator.gt),
                   ("ge", operator.ge), ("eq", operator.eq), ("ne", operator.ne)]:
    setattr(ndarray, f"__{_name}__", _binary(_op))
    if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(ndarray, f"__r{_name}__", _binary(_op, True))
        setattr(ndarray, f"__i{_name}__", _inplace(getattr(operator, f"i{_name}")))
ndarray.__hash__ = None
ndarray.__neg__ = lambda self: wrap(-self._a)
ndarray.__pos__ = lambda self: wrap(+self._a)
ndarray.__abs__ = lambda self: wrap(abs(self._a))
ndarray.__invert__ = lambda self: wrap(~self._a)
