"""Complex parts and construction: `real`, `imag`, `conj`, `angle`, `make_complex`,
`polar`, and the `Tensor.real` / `.imag` / `.conj()` / `.angle()` spellings.

Gradients follow PyTorch's convention for complex autograd: for a real loss L the
gradient of a complex tensor z = x + iy is dL/dx + i dL/dy (the conjugate Wirtinger
derivative, times 2). So a holomorphic f sends `g * conj(f'(z))` back, `conj` sends
`conj(g)`, `real` sends `g` and `imag` sends `1j * g`. A real input that receives
a complex gradient keeps its real part (the engine's cast does that).

>>> import tessera as ts
>>> z = ts.make_complex(ts.asarray([1.0, 0.0]), ts.asarray([2.0, -1.0]))
>>> ts.imag(ts.conj(z)).tolist()
[-2.0, 1.0]
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..errors import DTypeError
from ..tensor import Tensor
from ._dispatch import apply_op, broadcast_shapes, same_device, to_tensor

__all__ = ["imag", "conj", "angle", "make_complex", "polar"]


def _real_dtype(dt):
    """The real dtype that holds one part of complex dtype `dt`."""
    return _dt.fp64 if dt is _dt.complex128 else _dt.fp32


def _complex_dtype(dt):
    """The complex dtype whose parts have (at least) the precision of real dtype `dt`:
    fp64 -> complex128, everything else (fp32 and the narrow floats, ints) -> complex64."""
    if dt.kind == "c":
        return dt
    return _dt.complex128 if dt is _dt.fp64 else _dt.complex64


def real_part(x):
    """Real part of a complex tensor, as `numpy.real` (use `tessera.real`, which also
    accepts real tensors). Output: fp32 for complex64, fp64 for complex128."""
    x = to_tensor("real", x)
    xp = x.device.backend.xp
    # a copy, not NumPy's strided view: tessera tensors do not alias their input's parts
    return apply_op("real", (x,), lambda b: xp.ascontiguousarray(b.real), _real_dtype(x.dtype),
                    x.device, lambda g: (g,))


def imag(x):
    """Imaginary part, as `numpy.imag` (zeros for a real tensor, as NumPy does).

    >>> import tessera as ts
    >>> ts.imag(ts.asarray([1 + 2j])).tolist()
    [2.0]
    """
    x = to_tensor("imag", x)
    if not x.dtype.is_complex:
        from .creation import zeros_like
        return zeros_like(x)
    xp = x.device.backend.xp
    return apply_op("imag", (x,), lambda b: xp.ascontiguousarray(b.imag), _real_dtype(x.dtype),
                    x.device, lambda g: (g * 1j,))


_imag = imag  # make_complex's parameter is called `imag` (as torch.complex's)


def conj(x):
    """Complex conjugate, as the Array API `conj`; a real tensor is returned as is.

    >>> import tessera as ts
    >>> complex(ts.conj(ts.asarray(1 + 2j)))
    (1-2j)
    """
    x = to_tensor("conj", x)
    if not x.dtype.is_complex:
        return x
    xp = x.device.backend.xp
    return apply_op("conj", (x,), lambda b: xp.conj(b), x.dtype, x.device,
                    lambda g: (conj(g),))


def angle(x):
    """Argument (phase) in radians, as `numpy.angle`: atan2(imag, real). Real inputs
    give 0 or pi (fp32 for integers, as tessera's float ops do). The gradient at 0
    is 0, as PyTorch defines it.

    >>> import tessera as ts
    >>> round(float(ts.angle(ts.asarray(1j))), 6)
    1.570796
    """
    x = to_tensor("angle", x)
    xp = x.device.backend.xp
    if x.dtype.is_complex:
        out_dt = _real_dtype(x.dtype)
        xd = x.detach()

        def vjp(g):
            from .elementwise import where
            # d angle / dx = -y/r^2, d angle / dy = x/r^2, so the gradient
            # dL/dx + i dL/dy is g (-y + i x) / r^2 = g * 1j * z / |z|^2
            r2 = real_part(xd * conj(xd))
            zero = r2 == 0
            return (where(zero, 0.0, g * xd * 1j / where(zero, 1.0, r2)),)
        return apply_op("angle", (x,), lambda b: xp.angle(b), out_dt, x.device, vjp, (xd,))
    if x.dtype.kind == "b":
        raise DTypeError(f"[angle] is not defined for bool tensors (shape {x.shape})")
    out_dt = x.dtype if x.dtype.kind == "f" else _dt.fp32
    backend = x.device.backend

    def fwd(b):
        v = backend.compute(b, x.dtype)
        return backend.store(xp.where(v < 0, math.pi, 0.0).astype(backend.compute_dtype(out_dt)),
                             out_dt)
    return apply_op("angle", (x,), fwd, out_dt, x.device, lambda g: (g * 0,))


def make_complex(real, imag):
    """The complex tensor real + 1j * imag, as `torch.complex` (broadcasting as the
    Array API does). fp64 parts give complex128, other real dtypes complex64.

    >>> import tessera as ts
    >>> ts.make_complex(ts.asarray([1.0]), ts.asarray([2.0])).tolist()
    [(1+2j)]
    """
    re = to_tensor("make_complex", real)
    im = to_tensor("make_complex", imag, device=re.device)
    dev = same_device("make_complex", re, im)
    if re.dtype.is_complex or im.dtype.is_complex:
        raise DTypeError(f"[make_complex] parts must be real, got {re.dtype.name} and "
                         f"{im.dtype.name}; use real()/imag() to take the parts first")
    part_dt = _dt.promote(re.dtype, im.dtype)
    if part_dt.kind not in "f":
        part_dt = _dt.fp32
    out_dt = _complex_dtype(part_dt)
    shape = broadcast_shapes("make_complex", re.shape, im.shape)
    backend = dev.backend
    rdt, idt = re.dtype, im.dtype

    def fwd(br, bi):
        out = backend.xp.empty(shape, dtype=backend.storage_dtype(out_dt))
        out.real = backend.compute(br, rdt)
        out.imag = backend.compute(bi, idt)
        return out
    # dL/dreal and dL/dimag are the two parts of the gradient (the engine sums
    # them back over broadcast axes and casts to each part's dtype)
    return apply_op("make_complex", (re, im), fwd, out_dt, dev,
                    lambda g: (real_part(g), _imag(g)), shape=shape)


def polar(abs, angle):
    """abs * exp(1j * angle), as `torch.polar`, written in tessera ops (so its
    gradient is the composite's).

    >>> import tessera as ts
    >>> z = ts.polar(ts.asarray([2.0]), ts.asarray([0.0]))
    >>> z.tolist()
    [(2+0j)]
    """
    from .elementwise import cos, sin
    r = to_tensor("polar", abs)
    t = to_tensor("polar", angle, device=r.device)
    if r.dtype.is_complex or t.dtype.is_complex:
        raise DTypeError(f"[polar] abs and angle must be real, got {r.dtype.name} and "
                         f"{t.dtype.name}")
    return make_complex(r * cos(t), r * sin(t))


# -- Tensor spellings (PyTorch's): attached here so the complex family owns them ----
def _t_real(self):
    from .elementwise import real
    return real(self)


if not hasattr(Tensor, "real"):
    Tensor.real = property(_t_real, doc="Real part (the tensor itself when real).")
if not hasattr(Tensor, "imag"):
    Tensor.imag = property(imag, doc="Imaginary part (zeros when real).")
if not hasattr(Tensor, "conj"):
    Tensor.conj = conj
if not hasattr(Tensor, "angle"):
    Tensor.angle = angle
