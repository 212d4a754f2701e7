"""Finite-difference operators: first and second derivatives along an axis and
the Laplacian in 1-3 D, with Dirichlet (zero outside), Neumann (the boundary
value repeated: zero normal derivative) and periodic boundaries.

Two primitives carry them, each a single op on the backend's array module (so
NumPy on the CPU and CuPy on a GPU run the same code) whose VJP is the other:
`stencil(x)` = V P x (P extends x past the boundary by the rule, V takes the
weighted sum of shifted slices) and `stencil_t` = P^T V^T (V^T scatters back,
P^T folds the ghost cells onto the cells they copied). The Laplacian has its
own fused op: it is symmetric, so it is its own VJP, and the CG benchmark
lives on it (about 6 passes over memory per application).

>>> import tessera as ts
>>> from tessera import linop
>>> L = linop.laplacian((4,), bc="dirichlet")
>>> L.matvec(ts.ones((4,), dtype="fp64")).tolist()
[-1.0, 0.0, 0.0, -1.0]
"""
from __future__ import annotations

from ..errors import ShapeError
from ..ops._dispatch import apply_op
from .base import LinearOperator

__all__ = ["stencil", "stencil_t", "FirstDerivative", "SecondDerivative", "Laplacian",
           "first_derivative", "second_derivative", "laplacian", "BOUNDARIES"]

BOUNDARIES = {"dirichlet": "constant", "neumann": "edge", "periodic": "wrap"}


def _bc(op, bc):
    if bc not in BOUNDARIES:
        raise ValueError(f"[{op}] unknown boundary {bc!r}; accepted: {', '.join(BOUNDARIES)}")
    return bc


def _sl(ndim, axis, a, b):
    key = [slice(None)] * ndim
    key[axis] = slice(a, b)
    return tuple(key)


def _check_axis(op, x, axis, m):
    n = x.shape[axis]
    if n < m:
        raise ShapeError(f"[{op}] axis {axis} of shape {x.shape} has {n} points; the "
                         f"stencil reaches {m} beyond the boundary")


def stencil(x, axis, offsets, coeffs, bc="dirichlet"):
    """y[i] = sum_k coeffs[k] * x[i + offsets[k]] along `axis`, x extended past the
    boundary by `bc` (as `scipy.ndimage.correlate1d` with modes constant/nearest/wrap)."""
    m = max(abs(o) for o in offsets)
    _check_axis("linop.stencil", x, axis, m)
    xp = x.device.backend.xp
    mode, nd, n = BOUNDARIES[_bc("linop.stencil", bc)], x.ndim, x.shape[axis]

    def fwd(b):
        pw = [(0, 0)] * nd
        pw[axis] = (m, m)
        xpad = xp.pad(b, pw, mode=mode)
        out = None
        for o, c in zip(offsets, coeffs):
            t = xpad[_sl(nd, axis, m + o, m + o + n)]
            out = t * c if out is None else out + t * c  # noqa: PLR6104 (keeps dtype)
        return out.astype(b.dtype, copy=False)
    return apply_op("linop.stencil", (x,), fwd, x.dtype, x.device,
                    lambda g: (stencil_t(g, axis, offsets, coeffs, bc),))


def stencil_t(y, axis, offsets, coeffs, bc="dirichlet"):
    """The adjoint of `stencil` (P^T V^T): scatter each weighted slice back, then
    fold the ghost cells onto the cells they were copies of."""
    m = max(abs(o) for o in offsets)
    _check_axis("linop.stencil_t", y, axis, m)
    xp = y.device.backend.xp
    nd, n = y.ndim, y.shape[axis]

    def fwd(g):
        shape = list(g.shape)
        shape[axis] = n + 2 * m
        z = xp.zeros(shape, dtype=g.dtype)
        for o, c in zip(offsets, coeffs):
            z[_sl(nd, axis, m + o, m + o + n)] += g * c
        core = z[_sl(nd, axis, m, m + n)].copy()
        if m and bc == "periodic":
            core[_sl(nd, axis, n - m, n)] += z[_sl(nd, axis, 0, m)]
            core[_sl(nd, axis, 0, m)] += z[_sl(nd, axis, m + n, n + 2 * m)]
        elif m and bc == "neumann":
            core[_sl(nd, axis, 0, 1)] += z[_sl(nd, axis, 0, m)].sum(axis=axis, keepdims=True)
            core[_sl(nd, axis, n - 1, n)] += z[_sl(nd, axis, m + n, n + 2 * m)].sum(
                axis=axis, keepdims=True)
        return core
    return apply_op("linop.stencil_t", (y,), fwd, y.dtype, y.device,
                    lambda g: (stencil(g, axis, offsets, coeffs, bc),))


class _Stencil(LinearOperator):
    """A 1-D stencil along one axis of a tensor of `shape`."""

    def __init__(self, shape, axis, offsets, coeffs, bc, label, symmetric, definite, name):
        super().__init__(shape, shape, None, name, symmetric, definite)
        if not -len(shape) <= axis < len(shape):
            raise ShapeError(f"[linop.{label}] axis {axis} out of range for shape {shape}")
        self.axis, self.offsets, self.coeffs = axis % len(shape), tuple(offsets), tuple(coeffs)
        self.bc, self.label = _bc(f"linop.{label}", bc), label
        _check_axis(f"linop.{label}", _Shape(shape), self.axis, max(abs(o) for o in offsets))

    def _matvec(self, x):
        return stencil(x, self.axis, self.offsets, self.coeffs, self.bc)

    def _rmatvec(self, y):
        return stencil_t(y, self.axis, self.offsets, self.coeffs, self.bc)

    def _default_name(self):
        ax = f", axis={self.axis}" if len(self.domain_shape) > 1 else ""
        return f"{self.label}({', '.join(map(str, self.domain_shape))}{ax}, {self.bc})"


class _Shape:
    def __init__(self, shape):
        self.shape = shape


class FirstDerivative(_Stencil):
    """du/dx by forward, backward or central differences (as PyLops'
    `FirstDerivative`)."""

    def __init__(self, shape, axis=-1, h=1.0, bc="dirichlet", kind="forward", name=None):
        table = {"forward": ((0, 1), (-1 / h, 1 / h)), "backward": ((-1, 0), (-1 / h, 1 / h)),
                 "central": ((-1, 1), (-0.5 / h, 0.5 / h))}
        if kind not in table:
            raise ValueError(f"[linop.first_derivative] unknown kind {kind!r}; accepted: "
                             f"{', '.join(table)}")
        super().__init__(shape, axis, *table[kind], bc, "D", False, None, name)
        self.kind = kind


class SecondDerivative(_Stencil):
    """d2u/dx2 by the 3-point stencil; symmetric for every boundary rule."""

    def __init__(self, shape, axis=-1, h=1.0, bc="dirichlet", name=None):
        c = 1.0 / (h * h)
        super().__init__(shape, axis, (-1, 0, 1), (c, -2 * c, c), bc, "D2", True,
                         "neg" if bc == "dirichlet" else "nsd", name)


def _shape(shape):
    return (shape,) if isinstance(shape, int) else tuple(shape)


def first_derivative(shape, axis=-1, h=1.0, bc="dirichlet", kind="forward", name=None):
    """The first-derivative operator along `axis` of tensors of `shape`."""
    return FirstDerivative(_shape(shape), axis, h, bc, kind, name)


def second_derivative(shape, axis=-1, h=1.0, bc="dirichlet", name=None):
    """The second-derivative operator along `axis` of tensors of `shape`."""
    return SecondDerivative(_shape(shape), axis, h, bc, name)


def _laplacian_op(x, coefs, bc, scale):
    """scale * sum_axis coefs[axis] * (x[i-1] - 2 x[i] + x[i+1]) in one op."""
    xp = x.device.backend.xp
    nd = x.ndim
    same = len(set(coefs)) == 1

    def acc(dst, src, c):
        if c == 1.0:
            dst += src
        else:
            dst += c * src

    def fwd(b):
        # With one coefficient, add the neighbours unscaled and scale once at the end:
        # in-place adds of views, no temporaries (6 passes for 2-D).
        w = (1.0,) * nd if same else coefs
        out = b * (-2.0 * sum(w))
        for ax in range(nd):
            n, c = b.shape[ax], w[ax]
            lo, hi = _sl(nd, ax, 0, n - 1), _sl(nd, ax, 1, n)
            first, last = _sl(nd, ax, 0, 1), _sl(nd, ax, n - 1, n)
            acc(out[hi], b[lo], c)
            acc(out[lo], b[hi], c)
            if bc == "periodic":
                acc(out[first], b[last], c)
                acc(out[last], b[first], c)
            elif bc == "neumann":
                acc(out[first], b[first], c)
                acc(out[last], b[last], c)
        k = scale * (coefs[0] if same else 1.0)
        if k != 1.0:
            out *= k
        return out
    return apply_op("linop.laplacian", (x,), fwd, x.dtype, x.device,
                    lambda g: (_laplacian_op(g, coefs, bc, scale),))


class Laplacian(LinearOperator):
    """The 2d+1-point Laplacian sum_axis d2/dx_axis^2 on a grid of `shape` with
    spacing `h` (a number or one per axis), times `scale`."""

    def __init__(self, shape, h=1.0, bc="dirichlet", scale=1.0, name=None):
        shape = _shape(shape)
        hs = (h,) * len(shape) if isinstance(h, (int, float)) else tuple(h)
        if len(hs) != len(shape):
            raise ShapeError(f"[linop.laplacian] {len(hs)} spacings for a grid of shape {shape}")
        _bc("linop.laplacian", bc)
        neg = "neg" if bc == "dirichlet" else "nsd"
        definite = neg if scale > 0 else {"neg": "pos", "nsd": "psd"}[neg]
        super().__init__(shape, shape, None, name, True, definite)
        self.h, self.bc, self.scale = hs, bc, float(scale)
        self.coefs = tuple(1.0 / (v * v) for v in hs)

    def _matvec(self, x):
        return _laplacian_op(x, self.coefs, self.bc, self.scale)

    _rmatvec = _matvec

    def _scaled(self, c):
        if self.name is None and isinstance(c, (int, float)):
            return Laplacian(self.domain_shape, self.h, self.bc, self.scale * c)
        return None

    def diagonal(self):
        """The diagonal (a Jacobi preconditioner needs it), as a tensor of the grid's shape."""
        import numpy as np
        from ..ops.creation import asarray
        d = np.full(self.domain_shape, -2.0 * sum(self.coefs))
        if self.bc == "neumann":
            for ax, c in enumerate(self.coefs):
                idx = [slice(None)] * d.ndim
                for end in (0, -1):
                    idx[ax] = end
                    d[tuple(idx)] += c
        return asarray(d * self.scale)

    def _default_name(self):
        s = f"Laplacian({', '.join(map(str, self.domain_shape))}, {self.bc})"
        return s if self.scale == 1 else f"{self.scale:g} * {s}"


def laplacian(shape, h=1.0, bc="dirichlet", name=None):
    """The Laplacian on a 1-3 D grid (`-laplacian(...)` is positive definite with
    Dirichlet boundaries: the operator CG wants for Poisson problems)."""
    return Laplacian(shape, h, bc, 1.0, name)
