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

__all__ = ["LinearOperator", "PropertyError", "compose", "add", "scale", "adjoint", "power",
           "shape_str"]


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


def _wrap(A, prec):
    s = A.expr()
    return f"({s})" if A._prec < prec else s


# ---------------------------------------------------------------------------
# composite nodes
class _Adjoint(LinearOperator):
    _prec = 90

    def __init__(self, A):
        super().__init__(A.range_shape, A.domain_shape, A.dtype, None, A.symmetric, A.definite)
        self.ops = (A,)

    def _matvec(self, x):
        return self.ops[0]._rmatvec(x)

    def _rmatvec(self, y):
        return self.ops[0]._matvec(y)

    def expr(self):
        return self.name or _wrap(self.ops[0], 100) + ".H"


class _Product(LinearOperator):
    """ops[0] @ ops[1] @ ... (applied right to left)."""
    _prec = 50

    def __init__(self, ops):
        sym = False
        super().__init__(ops[-1].domain_shape, ops[0].range_shape,
                         _promote(*(o.dtype for o in ops)), None, sym)
        self.ops = tuple(ops)

    def _matvec(self, x):
        for A in reversed(self.ops):
            x = A._matvec(_reshape(x, A.domain_shape))
        return x

    def _rmatvec(self, y):
        for A in self.ops:
            y = A._rmatvec(_reshape(y, A.range_shape))
        return y

    def expr(self):
        return self.name or " @ ".join(_wrap(o, 51) for o in self.ops)


class _Sum(LinearOperator):
    _prec = 30

    def __init__(self, ops):
        sym = all(o.symmetric for o in ops)
        dfs = {o.definite for o in ops}
        definite = None
        if sym and dfs <= {"pos", "psd"} and dfs:
            definite = "pos" if "pos" in dfs else "psd"
        elif sym and dfs <= {"neg", "nsd"} and dfs:
            definite = "neg" if "neg" in dfs else "nsd"
        super().__init__(ops[0].domain_shape, ops[0].range_shape,
                         _promote(*(o.dtype for o in ops)), None, sym, definite)
        self.ops = tuple(ops)

    def _matvec(self, x):
        out = None
        for A in self.ops:
            y = _reshape(A._matvec(_reshape(x, A.domain_shape)), self.range_shape)
            out = y if out is None else out + y
        return out

    def _rmatvec(self, y):
        out = None
        for A in self.ops:
            x = _reshape(A._rmatvec(_reshape(y, A.range_shape)), self.domain_shape)
            out = x if out is None else out + x
        return out

    def expr(self):
        return self.name or " + ".join(_wrap(o, 31) for o in self.ops)


class _Scaled(LinearOperator):
    _prec = 60
    _tensor_attrs = ("c",)

    def __init__(self, c, A):
        real = not isinstance(c, complex) and not (type(c) is Tensor and c.dtype.kind == "c")
        definite = A.definite
        if definite is not None:
            if type(c) is Tensor or not real:
                definite = None
            elif c < 0:
                definite = {"pos": "neg", "neg": "pos", "psd": "nsd", "nsd": "psd"}[definite]
        super().__init__(A.domain_shape, A.range_shape,
                         _promote(A.dtype, c.dtype if type(c) is Tensor else None), None,
                         A.symmetric and real, definite)
        self.c = c
        self.ops = (A,)

    def _matvec(self, x):
        return self.c * self.ops[0]._matvec(x)

    def _rmatvec(self, y):
        c = self.c
        if isinstance(c, complex):
            c = c.conjugate()
        return c * self.ops[0]._rmatvec(y)

    def expr(self):
        c = self.c
        cs = f"{c.item():g}" if type(c) is Tensor else (f"{c:g}" if isinstance(c, float) else str(c))
        if type(c) is Tensor:
            cs = "c"
        return self.name or f"{cs} * {_wrap(self.ops[0], 61)}"


def _reshape(x, shape):
    return x if x.shape == shape else x.reshape(shape)


# ---------------------------------------------------------------------------
# constructors that simplify
def _is(A, cls_name):
    return type(A).__name__ == cls_name


def adjoint(A):
    """A^H with the rules: A.H.H = A, (A @ B).H = B.H @ A.H, (A + B).H = A.H + B.H,
    (c A).H = conj(c) A.H, self-adjoint operators are their own adjoint."""
    if type(A) is _Adjoint:
        return A.ops[0]
    if A.symmetric:
        return A
    if type(A) is _Product:
        return compose(*[adjoint(o) for o in reversed(A.ops)])
    if type(A) is _Sum:
        return add(*[adjoint(o) for o in A.ops])
    if type(A) is _Scaled:
        c = A.c
        return scale(c.conjugate() if isinstance(c, complex) else c, adjoint(A.ops[0]))
    h = getattr(A, "_adjoint", None)  # built-ins whose adjoint is another built-in
    if h is not None:
        r = h()
        if r is not None:
            return r
    return _Adjoint(A)


def _check_compose(A, B):
    if _prod(B.range_shape) != _prod(A.domain_shape):
        raise ShapeError(f"[linop.matmul] cannot compose {A!r} @ {B!r}: {A!r} maps "
                         f"{shape_str(A)} but {B!r} maps {shape_str(B)}; the range of the "
                         f"right operand ({_prod(B.range_shape)} elements) must match the "
                         f"domain of the left one ({_prod(A.domain_shape)} elements)")


def compose(*ops):
    """ops[0] @ ops[1] @ ...: identities dropped, zeros absorb, scalars pulled
    out front, nested products flattened, adjacent diagonals multiplied."""
    ops = list(ops)
    for A, B in zip(ops, ops[1:]):
        _check_compose(A, B)
    c = 1
    flat = []
    for A in ops:
        while type(A) is _Scaled and not (type(A.c) is Tensor):
            c = c * A.c
            A = A.ops[0]
        if type(A) is _Product:
            flat.extend(A.ops)
        else:
            flat.append(A)
    if any(_is(A, "Zero") for A in flat):
        from .builtins import Zero
        return Zero(ops[-1].domain_shape, ops[0].range_shape, _promote(*(o.dtype for o in ops)))
    out = []
    for A in flat:
        if _is(A, "Identity"):
            continue
        if out and _is(A, "Diagonal") and _is(out[-1], "Diagonal") and \
                out[-1].domain_shape == A.domain_shape:
            from .builtins import Diagonal
            out[-1] = Diagonal(out[-1].d * A.d)
            continue
        out.append(A)
    if not out:
        from .builtins import Identity
        res = Identity(ops[-1].domain_shape, dtype=_promote(*(o.dtype for o in ops)))
    elif len(out) == 1:
        res = out[0]
    else:
        res = _Product(out)
        # Shapes follow the outer operands even when an identity was dropped
        res.domain_shape, res.range_shape = ops[-1].domain_shape, ops[0].range_shape
        if len(out) == 2 and type(out[0]) is _Adjoint and out[0].ops[0] is out[1]:
            res.symmetric, res.definite = True, "psd"  # A.H @ A
    return scale(c, res) if c != 1 else res


def add(*ops):
    """ops[0] + ops[1] + ...: zeros dropped, nested sums flattened."""
    ops = list(ops)
    for B in ops[1:]:
        A = ops[0]
        if B.shape != A.shape:
            raise ShapeError(f"[linop.add] cannot add {A!r} ({shape_str(A)}) and {B!r} "
                             f"({shape_str(B)}): the shapes differ")
    flat = []
    for A in ops:
        flat.extend(A.ops if type(A) is _Sum else (A,))
    kept = [A for A in flat if not _is(A, "Zero")]
    if not kept:
        return ops[0]
    if len(kept) == 1:
        return kept[0]
    return _Sum(kept)


def scale(c, A):
    """c * A: 1 * A = A, 0 * A = Zero, c * (d * A) = (c d) * A, scalars fold into
    identities, diagonals and stencils."""
    if type(c) is not Tensor:
        if c == 1:
            return A
        if c == 0:
            from .builtins import Zero
            return Zero(A.domain_shape, A.range_shape, A.dtype)
        if type(A) is _Scaled and type(A.c) is not Tensor:
            return scale(c * A.c, A.ops[0])
        folded = getattr(A, "_scaled", None)
        if folded is not None:
            r = folded(c)
            if r is not None:
                return r
    return _Scaled(c, A)


def power(A, k):
    """A ** k for an integer k >= 0 (A ** 0 is the identity)."""
    import operator
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"[linop.power] exponent must be an integer, got {k!r}") from None
    if k < 0:
        raise ValueError(f"[linop.power] negative power {k} of {A!r}: use linop.solve")
    if not A.is_square:
        raise ShapeError(f"[linop.power] {A!r} maps {shape_str(A)}: only a square operator "
                         "has powers")
    if k == 0:
        from .builtins import Identity
        return Identity(A.domain_shape, dtype=A.dtype)
    r = compose(*([A] * k))
    if A.symmetric and type(r) is _Product:
        r.symmetric = True
    return r
