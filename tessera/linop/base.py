"""`LinearOperator` and its symbolic algebra.

A linear operator maps tensors of `domain_shape` to tensors of `range_shape`
without materializing a matrix (SciPy's `LinearOperator`, PyLops, lineax). Its
adjoint `A.H` (`A.T` for real operators) is another operator. Operators combine
into expression trees (`A @ B`, `A + B`, `c * A`, `A.H`, `A ** k`, `kron`,
`block`, `block_diag`); the constructors apply the algebra's rules as they build
(`(A @ B).H -> B.H @ A.H`, `A.H.H -> A`, `I @ A -> A`, `A + 0 -> A`, scalars fold,
self-adjoint operators are their own adjoint), so `repr` prints the simplified
expression. Operators are built from tessera ops, so they apply under autodiff:
gradients flow to the input and to any tensor the operator holds.

>>> import tessera as ts
>>> from tessera import linop
>>> A = linop.aslinearoperator(ts.asarray([[1.0, 2.0], [3.0, 4.0]]), name="A")
>>> B = linop.diagonal(ts.asarray([1.0, -1.0]), name="B")
>>> (A @ B).H
B @ A.H
>>> (A @ ts.asarray([1.0, 1.0])).tolist()
[3.0, 7.0]
"""
from __future__ import annotations

import copy
import numbers

from ..errors import ShapeError, TesseraError
from ..tensor import Tensor

__all__ = ["LinearOperator", "PropertyError", "shape_str"]


class PropertyError(TesseraError, ValueError):
    """An operator's declared property (symmetry, definiteness) does not hold."""


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def shape_str(A):
    return f"{tuple(A.domain_shape)} -> {tuple(A.range_shape)}"


def _promote(*dts):
    from ..dtypes import promote
    out = None
    for d in dts:
        if d is None:
            continue
        out = d if out is None else promote(out, d)
    return out


class LinearOperator:
    """Base class. Subclasses set the shapes in `__init__` and implement
    `_matvec(x)` (x has `domain_shape`) and, for a hand-written adjoint,
    `_rmatvec(y)`; without one, the adjoint is the VJP of `_matvec` from
    autodiff. `_tensor_attrs` names the attributes holding tensors and `ops`
    the child operators, so that solvers can differentiate through them.

    Properties: `symmetric` (self-adjoint), `definite` ("pos", "neg", "psd",
    "nsd" or None). `shape` is SciPy's (range size, domain size)."""

    _tensor_attrs = ()
    ops = ()
    _prec = 100  # printing precedence: atoms bind tightest

    def __init__(self, domain_shape, range_shape=None, dtype=None, name=None,
                 symmetric=False, definite=None):
        self.domain_shape = tuple(int(d) for d in domain_shape)
        self.range_shape = self.domain_shape if range_shape is None else \
            tuple(int(d) for d in range_shape)
        self.dtype = dtype
        self.name = name
        self.symmetric = bool(symmetric)
        self.definite = definite
        if definite is not None and definite not in ("pos", "neg", "psd", "nsd"):
            raise PropertyError(f"[LinearOperator] definite={definite!r}; accepted: "
                                "'pos', 'neg', 'psd', 'nsd' or None")

    # -- shapes -------------------------------------------------------------
    @property
    def shape(self):
        return (_prod(self.range_shape), _prod(self.domain_shape))

    @property
    def is_square(self):
        return self.shape[0] == self.shape[1]

    @property
    def positive_definite(self):
        return self.definite == "pos"

    def declare(self, symmetric=None, definite=None):
        """A copy with declared properties (what `solve` picks its method from and
        `check_symmetric` probes): `(D.H @ K @ D).declare(symmetric=True)`."""
        new = copy.copy(self)
        if symmetric is not None:
            new.symmetric = bool(symmetric)
        if definite is not None:
            if definite not in ("pos", "neg", "psd", "nsd"):
                raise PropertyError(f"[linop.declare] definite={definite!r}; accepted: "
                                    "'pos', 'neg', 'psd', 'nsd'")
            new.definite = definite
        return new

    # -- application --------------------------------------------------------
    def _matvec(self, x):  # pragma: no cover - abstract
        raise NotImplementedError(f"[linop] {type(self).__name__} has no _matvec")

    def _rmatvec(self, y):
        from .._config import STATE
        from ..autograd.engine import grad
        from ..autograd.grad_mode import enable_grad
        from ..ops.creation import zeros
        # Linear: the VJP at any point is the adjoint; at 0 the probe is cheap. The
        # result must stay differentiable in y (and in the operator's tensors) when
        # an outer tape needs it, hence create_graph then.
        outer = STATE.grad_enabled and (y.requires_grad or
                                        any(t.requires_grad for t in self.tensors()))
        x0 = zeros(self.domain_shape, dtype=y.dtype, device=y.device)
        x0.requires_grad = True
        with enable_grad():
            out = self._matvec(x0)
            if not out.requires_grad:  # does not depend on x: the zero operator
                return zeros(self.domain_shape, dtype=y.dtype, device=y.device)
            g = grad(out, x0, grad_outputs=y, create_graph=outer, allow_unused=True)
        if g is None:
            return zeros(self.domain_shape, dtype=y.dtype, device=y.device)
        return g if outer else g.detach()

    def _fit(self, op, x, shape):
        from ..ops.creation import asarray
        from ..ops.movement import reshape
        if type(x) is not Tensor:
            x = asarray(x)
        if x.shape == shape:
            return x
        if x.size == _prod(shape) and x.ndim <= 2 and (x.ndim == 1 or 1 in x.shape):
            return reshape(x, shape)  # SciPy habit: flat (n,) or (n, 1) vectors
        raise ShapeError(f"[{op}] operator {self!r} expects an input of shape {shape} "
                         f"(or {_prod(shape)} elements flat), got {x.shape}")

    def matvec(self, x):
        """A x. `x` has `domain_shape` (or is flat with as many elements; the
        result is then flat too)."""
        flat = type(x) is Tensor and x.shape != self.domain_shape and x.ndim == 1
        y = self._matvec(self._fit("linop.matvec", x, self.domain_shape))
        return y.reshape((-1,)) if flat else y

    def rmatvec(self, y):
        """A^H y."""
        flat = type(y) is Tensor and y.shape != self.range_shape and y.ndim == 1
        x = self._rmatvec(self._fit("linop.rmatvec", y, self.range_shape))
        return x.reshape((-1,)) if flat else x

    __call__ = matvec

    # -- algebra ------------------------------------------------------------
    @property
    def H(self):
        return adjoint(self)

    @property
    def T(self):
        if self.dtype is not None and self.dtype.kind == "c":
            raise TypeError(f"[linop.T] {self!r} is complex: use .H for the adjoint")
        return adjoint(self)

    def __matmul__(self, other):
        if isinstance(other, LinearOperator):
            return compose(self, other)
        return self.matvec(other)

    def __rmatmul__(self, other):
        if isinstance(other, LinearOperator):
            return compose(other, self)
        return NotImplemented

    def __add__(self, other):
        if isinstance(other, LinearOperator):
            return add(self, other)
        return NotImplemented

    def __sub__(self, other):
        if isinstance(other, LinearOperator):
            return add(self, scale(-1, other))
        return NotImplemented

    def __neg__(self):
        return scale(-1, self)

    # Binary operators with a Tensor or ndarray on the left defer to ours (NumPy's
    # convention, which tessera's elementwise dispatch follows too).
    __array_ufunc__ = None

    def __mul__(self, c):
        if isinstance(c, numbers.Number) or (type(c) is Tensor and c.ndim == 0):
            return scale(c, self)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, c):
        if isinstance(c, numbers.Number):
            return scale(1.0 / c, self)
        return NotImplemented

    def __pow__(self, k):
        return power(self, k)

    # -- materialization and introspection --------------------------------
    def to_dense(self, dtype=None, device=None):
        """The matrix (range size x domain size), one column per unit vector.
        Only on request: operators never materialize otherwise."""
        from ..ops.creation import eye
        from ..ops.manipulation import stack
        dt = dtype or self.dtype or "fp64"
        dev = device or self.device
        E = eye(self.shape[1], dtype=dt, device=dev)
        cols = [self.matvec(E[j]).reshape((-1,)) for j in range(self.shape[1])]
        if not cols:
            from ..ops.creation import zeros
            return zeros(self.shape, dtype=dt, device=dev)
        return stack(cols, axis=1)

    @property
    def device(self):
        for t in self.tensors():
            return t.device
        return None

    def tensors(self):
        """Every tensor the operator tree holds (in a fixed order)."""
        out = []
        for a in self._tensor_attrs:
            v = getattr(self, a)
            if type(v) is Tensor:
                out.append(v)
            elif isinstance(v, (tuple, list)):
                out.extend(t for t in v if type(t) is Tensor)
        for c in self.ops:
            out.extend(c.tensors())
        return out

    def map_tensors(self, fn):
        """A copy of the tree with every held tensor t replaced by fn(t)."""
        new = copy.copy(self)
        for a in self._tensor_attrs:
            v = getattr(self, a)
            if type(v) is Tensor:
                setattr(new, a, fn(v))
            elif isinstance(v, (tuple, list)):
                setattr(new, a, type(v)(fn(t) if type(t) is Tensor else t for t in v))
        if self.ops:
            new.ops = tuple(c.map_tensors(fn) for c in self.ops)
        new._rebuilt()
        return new

    def _rebuilt(self):
        """Hook for subclasses caching anything derived from their tensors."""

    def expr(self):
        return self.name or self._default_name()

    def _default_name(self):
        return f"{type(self).__name__}{shape_str(self)}"

    def __repr__(self):
        return self.expr()

    def describe(self):
        dt = self.dtype.name if self.dtype is not None else "any float"
        props = [p for p, on in (("symmetric", self.symmetric),) if on]
        if self.definite:
            props.append({"pos": "positive definite", "neg": "negative definite",
                          "psd": "positive semidefinite",
                          "nsd": "negative semidefinite"}[self.definite])
        return f"<LinearOperator {self.expr()}: {shape_str(self)}, {dt}" + \
            (", " + ", ".join(props) if props else "") + ">"


# the algebra's constructors, used by the operator methods above (a module of
# their own; imported last because its nodes subclass LinearOperator)
from .algebra import add, adjoint, compose, power, scale  # noqa: E402
