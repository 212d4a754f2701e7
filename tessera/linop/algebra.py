"""The operator algebra: the composite nodes (adjoint, product, sum, scaled) and
the constructors that simplify as they build (`compose`, `add`, `scale`,
`adjoint`, `power`); the rules are listed on each constructor.

>>> import tessera as ts
>>> from tessera import linop
>>> A = linop.aslinearoperator(ts.ones((2, 3)), name="A")
>>> linop.adjoint(linop.adjoint(A)) is A, repr(linop.compose(A, linop.identity(3)))
(True, 'A')
"""
from __future__ import annotations

from ..errors import ShapeError
from ..tensor import Tensor
from .base import LinearOperator, _prod, _promote, shape_str

__all__ = ["compose", "add", "scale", "adjoint", "power"]


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
