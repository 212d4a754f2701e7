"""The eager `Tensor`: a device buffer (NumPy or CuPy array in the backend's storage
dtype) or a pending fusion node, plus tessera's dtype, device and autograd state.

A tensor is either *realized* (`_buf` holds an array) or *lazy* (`_lazy` holds a
`fusion.lazy.LazyOp`; the array appears on first use). Views share a version
counter with their base so that autodiff can detect in-place writes into saved
tensors. Operators and methods delegate to `tessera.ops`; they are attached by
`tessera.ops._methods` so this module stays about data, not math.
"""
from __future__ import annotations

import numpy as np

from . import dtypes as _dt
from ._config import STATE
from .errors import GradError


class Version:
    """A version counter shared by a tensor and its views (bumped by in-place ops).
    `v` starts as the class attribute 0, so making one is a bare object creation
    (every new tensor makes one); the first bump stores it on the instance."""
    v = 0


class Tensor:
    __slots__ = ("_buf", "_lazy", "shape", "dtype", "device", "requires_grad", "grad",
                 "grad_fn", "_out_idx", "_version", "_accum", "_retains_grad", "_name",
                 "__weakref__")
    __array_priority__ = 1000  # numpy_array + tensor -> Tensor.__radd__

    # -- construction -------------------------------------------------------
    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        from .ops.creation import asarray
        t = asarray(data, dtype=dtype, device=device)
        _adopt(self, t)
        if requires_grad:
            self.requires_grad_(True)

    # -- realization --------------------------------------------------------
    @property
    def data(self):
        """The raw backend array (NumPy or CuPy, storage dtype), realizing a lazy tensor."""
        buf = self._buf
        if buf is None:
            buf = self._buf = self._lazy.realize()
            self._lazy = None
        return buf

    def realize(self):
        """Compute a pending (lazily fused) value now; returns self."""
        if self._buf is None:
            self._buf = self._lazy.realize("explicit realize")
            self._lazy = None
        return self

    @property
    def is_lazy(self):
        return self._buf is None

    # -- metadata -----------------------------------------------------------
    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def numel(self):
        return self.size

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    @property
    def strides(self):
        """Strides in elements (not bytes), as PyTorch reports them."""
        buf = self.data
        return tuple(s // buf.itemsize for s in buf.strides)

    def is_contiguous(self):
        return bool(self.data.flags.c_contiguous)

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def T(self):
        if self.ndim != 2:
            from .errors import ShapeError
            raise ShapeError(f"[T] needs a 2-D tensor, got shape {self.shape}; use .mT or permute_dims")
        from .ops.movement import permute_dims
        return permute_dims(self, (1, 0))

    @property
    def mT(self):
        from .ops.linalg import matrix_transpose
        return matrix_transpose(self)

    # -- autograd state -----------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        if requires_grad and not self.dtype.is_differentiable:
            raise GradError(f"[requires_grad_] only floating and complex tensors can require "
                            f"gradients; this tensor is {self.dtype.name}")
        if not requires_grad and self.grad_fn is not None:
            raise GradError("[requires_grad_] cannot turn off requires_grad on a non-leaf tensor; "
                            "use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self):
        """A tensor sharing this one's storage (and version counter), off the tape."""
        t = _object_new(Tensor)  # as _new, with the shared version counter
        t._buf = buf = self._buf
        t._lazy = None
        t.shape = self.shape
        t.dtype = self.dtype
        t.device = self.device
        t.requires_grad = False
        t.grad = None
        t.grad_fn = None
        t._out_idx = 0
        t._version = self._version
        t._accum = None
        t._retains_grad = False
        t._name = None
        if buf is None:
            from .fusion.lazy import attach
            attach(t, self._lazy)
        return t

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def retain_grad(self):
        """Keep `.grad` on a non-leaf tensor after backward."""
        if self.grad_fn is not None and not self._retains_grad:
            self._retains_grad = True
            self.grad_fn.add_retain(self)
        return self

    def register_hook(self, fn):
        """`fn(grad) -> grad or None` runs when this tensor's gradient is computed."""
        if not self.requires_grad:
            raise GradError("[register_hook] tensor does not require grad")
        from .autograd.engine import hook_target
        return hook_target(self).add_hook(self._out_idx, fn)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .autograd.engine import backward
        backward((self,), None if gradient is None else (gradient,), retain_graph=retain_graph,
                 create_graph=create_graph, inputs=inputs)

    def zero_grad_(self):
        self.grad = None

    # -- host access ----------------------------------------------------------
    def numpy(self):
        """A NumPy array (bf16/fp8 as ml_dtypes types). Shares memory on the CPU."""
        if self.requires_grad and STATE.grad_enabled and self.grad_fn is not None:
            pass  # like NumPy interop in JAX: reading values is always allowed
        data = self.data  # realizes a pending group, which queues its check_numerics flag
        if STATE.check_numerics and self.device.type != "cpu":
            from .numerics import sync_point
            sync_point()  # a host read syncs anyway: read the device flag (after realizing)
        return self.device.backend.to_numpy(data, self.dtype)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        if copy:
            a = a.copy()
        return a

    def item(self):
        if self.size != 1:
            from .errors import ShapeError
            raise ShapeError(f"[item] only one-element tensors convert to a Python scalar; "
                             f"shape is {self.shape}")
        return self.numpy().reshape(()).item() if self.dtype.kind in "biuc" \
            else float(self.numpy().reshape(()).astype("float64"))

    def tolist(self):
        a = self.numpy()
        if self.dtype.kind == "f" and self.dtype.itemsize < 4 or self.dtype in (_dt.fp8_e4m3, _dt.fp8_e5m2):
            a = a.astype("float64")
        return a.tolist()

    def __float__(self):
        return float(self.item().real if self.dtype.is_complex else self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if not self.dtype.is_integer:
            raise TypeError(f"only integer tensors can be used as an index, not {self.dtype.name}")
        return int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __bool__(self):
        if self.size != 1:
            from .errors import ShapeError
            raise ShapeError(f"[bool] the truth value of a tensor with {self.size} elements is "
                             f"ambiguous; use tessera.any() or tessera.all()")
        return bool(self.item())

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self):
        return id(self)

    # -- devices ----------------------------------------------------------------
    def to(self, device=None, dtype=None, copy=False):
        """Copy to another device and/or cast; returns self when nothing changes."""
        from .device import get_device
        out = self
        if dtype is not None:
            from .ops.elementwise import astype
            out = astype(out, dtype, copy=copy)
        if device is not None:
            dev = get_device(device)
            if dev is not out.device:
                from .ops.creation import to_device
                out = to_device(out, dev)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, index=None):
        return self.to("cuda" if index is None else f"cuda:{index}")

    def type(self, dtype):
        return self.to(dtype=dtype)

    # -- display -----------------------------------------------------------------
    def __repr__(self):
        from ._repr import tensor_repr
        return tensor_repr(self)

    def __str__(self):
        from ._repr import tensor_str
        return tensor_str(self)

    def _repr_html_(self):
        from ._repr import tensor_html
        return tensor_html(self)

    def __format__(self, spec):
        if self.size == 1 and spec:
            return format(self.item(), spec)
        return str(self)

    def __array_namespace__(self, api_version=None):
        if api_version not in (None, "2021.12", "2022.12", "2023.12"):
            raise ValueError(f"unsupported Array API version {api_version!r}")
        import tessera
        return tessera

    def __getstate__(self):
        return {"data": self.numpy(), "dtype": self.dtype.name, "device": str(self.device),
                "requires_grad": self.requires_grad}

    def __setstate__(self, state):
        from .ops.creation import asarray
        t = asarray(state["data"], dtype=state["dtype"], device=state["device"])
        _adopt(self, t)
        self.requires_grad = state["requires_grad"]


def _adopt(t, fresh):
    """Fill a Tensor made by `Tensor(...)` or unpickling from a freshly built one."""
    for name in Tensor.__slots__:
        if name != "__weakref__":
            setattr(t, name, getattr(fresh, name))


_object_new = object.__new__


def _scalar_types():
    types = {np.dtype(c).type for c in "?bhilqBHILQefdgFDG"}
    for d in (_dt.bf16, _dt.fp8_e4m3, _dt.fp8_e5m2):
        st = d.np_storage
        if st is not None:
            types.add(st.type)
    return frozenset(types)


_NP_SCALARS = _scalar_types()


def _new(buf, shape, dtype, device):
    """The fast constructor used by every op: no checks, and one conversion: a
    NumPy scalar (what a NumPy ufunc returns for 0-d operands) becomes a 0-d
    array, so 0-d results take in-place writes and share memory with their views
    as every other tensor does. Every field is written inline (this runs once per
    op; a loop or call costs more)."""
    t = _object_new(Tensor)
    if buf.__class__ in _NP_SCALARS:
        buf = np.asarray(buf)
    t._buf = buf
    t._lazy = None
    t.shape = shape
    t.dtype = dtype
    t.device = device
    t.requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._out_idx = 0
    t._version = Version()
    t._accum = None
    t._retains_grad = False
    t._name = None
    return t


def is_tensor(x):
    return type(x) is Tensor
