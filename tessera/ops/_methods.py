"""Attach operators and methods to `Tensor` (kept out of tensor.py so the class
stays about data). Dunders bind the op functions directly: `a + b` costs one
Python call into `elementwise.apply`."""
from .._config import STATE
from ..tensor import Tensor
from . import elementwise as ew, linalg, movement, reduce as red


def _r(fn):
    def reflected(a, b):
        return fn(b, a)
    reflected.__name__ = "r" + fn.__name__
    return reflected


def _inplace(fn):
    def inplace(a, b):
        from .inplace import assign_inplace
        src = a
        if STATE.grad_enabled and (a.requires_grad or getattr(b, "requires_grad", False)):
            # The out-of-place op may save `a` for its backward (y *= x saves y), and
            # the write below would overwrite that saved value: compute from a copy,
            # as PyTorch saves `original_self` for in-place ops.
            src = movement.copy(a)
        return assign_inplace(a, fn(src, b), fn.__name__)
    return inplace


_BIN = {
    "add": ew.add, "sub": ew.subtract, "mul": ew.multiply, "truediv": ew.divide,
    "floordiv": ew.floor_divide, "mod": ew.remainder, "pow": ew.pow,
    "and": ew.bitwise_and, "or": ew.bitwise_or, "xor": ew.bitwise_xor,
    "lshift": ew.bitwise_left_shift, "rshift": ew.bitwise_right_shift,
    "matmul": linalg.matmul,
}
for _name, _fn in _BIN.items():
    setattr(Tensor, f"__{_name}__", _fn)
    setattr(Tensor, f"__r{_name}__", _r(_fn))
    setattr(Tensor, f"__i{_name}__", _inplace(_fn))

Tensor.__eq__ = ew.equal
Tensor.__ne__ = ew.not_equal
Tensor.__lt__ = ew.less
Tensor.__le__ = ew.less_equal
Tensor.__gt__ = ew.greater
Tensor.__ge__ = ew.greater_equal
Tensor.__neg__ = ew.negative
Tensor.__pos__ = ew.positive
Tensor.__abs__ = ew.abs
Tensor.__invert__ = lambda x: ew.logical_not(x) if x.dtype.kind == "b" else ew.bitwise_invert(x)


def _setitem(x, key, value):
    from .indexing import setitem
    setitem(x, key, value)


from . import indexing as _indexing  # noqa: E402

Tensor.__getitem__ = _indexing.getitem  # bound directly: x[i] is one Python call
Tensor.__setitem__ = _setitem

# Methods, as PyTorch/NumPy users expect them.
Tensor.sum = lambda x, axis=None, keepdims=False, dtype=None: red.sum(x, axis, keepdims=keepdims, dtype=dtype)
Tensor.mean = lambda x, axis=None, keepdims=False: red.mean(x, axis, keepdims=keepdims)
Tensor.max = lambda x, axis=None, keepdims=False: red.max(x, axis, keepdims=keepdims)
Tensor.min = lambda x, axis=None, keepdims=False: red.min(x, axis, keepdims=keepdims)
Tensor.prod = lambda x, axis=None, keepdims=False: red.prod(x, axis, keepdims=keepdims)
Tensor.var = lambda x, axis=None, correction=0.0, keepdims=False: red.var(x, axis, correction=correction, keepdims=keepdims)
Tensor.std = lambda x, axis=None, correction=0.0, keepdims=False: red.std(x, axis, correction=correction, keepdims=keepdims)
Tensor.argmax = lambda x, axis=None, keepdims=False: red.argmax(x, axis, keepdims=keepdims)
Tensor.argmin = lambda x, axis=None, keepdims=False: red.argmin(x, axis, keepdims=keepdims)
Tensor.all = lambda x, axis=None, keepdims=False: red.all(x, axis, keepdims=keepdims)
Tensor.any = lambda x, axis=None, keepdims=False: red.any(x, axis, keepdims=keepdims)
Tensor.logsumexp = lambda x, axis=None, keepdims=False: red.logsumexp(x, axis, keepdims=keepdims)


def _reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return movement.reshape(x, tuple(shape))


Tensor.reshape = _reshape
Tensor.view = _reshape
Tensor.flatten = lambda x: movement.reshape(x, (-1,))
Tensor.permute = lambda x, *axes: movement.permute_dims(
    x, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes)
Tensor.squeeze = lambda x, axis=None: movement.squeeze(x, axis)
Tensor.unsqueeze = lambda x, axis: movement.expand_dims(x, axis)
Tensor.expand_dims = lambda x, axis=0: movement.expand_dims(x, axis)
Tensor.broadcast_to = lambda x, shape: movement.broadcast_to(x, shape)
Tensor.flip = lambda x, axis=None: movement.flip(x, axis)
Tensor.copy = movement.copy
Tensor.clone = movement.copy
Tensor.contiguous = movement.contiguous
Tensor.astype = lambda x, dtype, copy=True: ew.astype(x, dtype, copy=copy)
Tensor.matmul = linalg.matmul
Tensor.clip = lambda x, min=None, max=None: ew.clip(x, min, max)
Tensor.clamp = Tensor.clip
Tensor.abs = ew.abs
Tensor.exp = ew.exp
Tensor.log = ew.log
Tensor.sqrt = ew.sqrt
Tensor.tanh = ew.tanh
Tensor.sigmoid = ew.sigmoid
Tensor.sin = ew.sin
Tensor.cos = ew.cos
Tensor.square = ew.square


def _swap(x, a, b):
    axes = list(range(x.ndim))
    a, b = a % x.ndim, b % x.ndim
    axes[a], axes[b] = axes[b], axes[a]
    return movement.permute_dims(x, tuple(axes))


Tensor.transpose = lambda x, a=-2, b=-1: _swap(x, a, b)
Tensor.swapaxes = Tensor.transpose

# DLPack (Array API 2023.12): the protocol lives in tessera.interop.dlpack.
from ..interop.dlpack import __dlpack__ as _dlpack, __dlpack_device__ as _dlpack_device  # noqa: E402
Tensor.__dlpack__ = _dlpack
Tensor.__dlpack_device__ = _dlpack_device
