"""Built-in operators written in tessera ops: dense matrix, diagonal, identity,
zero, restriction/masking, `from_function` (adjoint from autodiff), Kronecker
and block products.

Each one applies matrix-free (a matrix only exists when you gave one), and
because the application is written in tessera ops, gradients reach the input
and every tensor the operator holds.

>>> import tessera as ts
>>> from tessera import linop
>>> D = linop.diagonal(ts.asarray([1.0, 2.0, 3.0]))
>>> (D @ ts.ones((3,))).tolist()
[1.0, 2.0, 3.0]
>>> F = linop.from_function(lambda x: ts.cumulative_sum(x), (3,))
>>> F.H.matvec(ts.ones((3,))).tolist()
[3.0, 2.0, 1.0]
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .base import LinearOperator, _prod, adjoint, shape_str

__all__ = ["aslinearoperator", "MatrixOperator", "Diagonal", "diagonal", "Identity",
           "identity", "Zero", "zero", "Restriction", "restriction", "masking",
           "FromFunction", "from_function", "Kronecker", "kron", "Block", "block",
           "block_diag"]


def _tensor(op, x, dtype=None):
    from ..ops.creation import asarray
    t = x if type(x) is Tensor else asarray(x, dtype=dtype)
    if not t.dtype.is_differentiable:
        raise DTypeError(f"[{op}] expects a floating or complex tensor, got {t.dtype.name} "
                         f"(shape {t.shape})")
    return t


class MatrixOperator(LinearOperator):
    """A dense matrix M (m x n) acting on vectors of n elements."""
    _tensor_attrs = ("M",)

    def __init__(self, M, name=None, symmetric=False, definite=None):
        if M.ndim != 2:
            raise ShapeError(f"[linop.aslinearoperator] expects a 2-D matrix, got shape {M.shape}")
        super().__init__((M.shape[1],), (M.shape[0],), M.dtype, name, symmetric, definite)
        self.M = M

    def _matvec(self, x):
        from ..ops.linalg import matmul
        return matmul(self.M, x)

    def _rmatvec(self, y):
        from ..ops.linalg import matmul
        return matmul(self.M.mT, y)

    def _default_name(self):
        return f"Matrix{self.M.shape}"

    def to_dense(self, dtype=None, device=None):
        return self.M if dtype is None else self.M.astype(dtype)


def aslinearoperator(A, name=None, symmetric=False, definite=None):
    """A LinearOperator from a tensor (a dense matrix), a NumPy array, a SciPy
    sparse matrix or an operator (returned as is), as
    `scipy.sparse.linalg.aslinearoperator`."""
    if isinstance(A, LinearOperator):
        return A
    if type(A).__module__.startswith(("scipy.sparse", "cupyx")):
        from .sparse import sparse
        return sparse(A, name=name, symmetric=symmetric, definite=definite)
    return MatrixOperator(_tensor("linop.aslinearoperator", A), name, symmetric, definite)


class Diagonal(LinearOperator):
    """x -> d * x elementwise; the domain has d's shape."""
    _tensor_attrs = ("d",)

    def __init__(self, d, name=None, definite=None):
        real = d.dtype.kind != "c"
        super().__init__(d.shape, d.shape, d.dtype, name, real, definite)
        self.d = d

    def _matvec(self, x):
        return self.d * x

    def _rmatvec(self, y):
        return self.d * y  # real diagonals only are self-adjoint; complex: see _adjoint

    def _scaled(self, c):
        return Diagonal(c * self.d) if self.name is None and type(c) is not Tensor else None

    def _default_name(self):
        return f"Diagonal{self.d.shape}"


def diagonal(d, name=None, definite=None):
    """The diagonal operator diag(d) (d of any shape; applied elementwise)."""
    return Diagonal(_tensor("linop.diagonal", d), name, definite)


class Identity(LinearOperator):
    def __init__(self, shape, dtype=None):
        super().__init__(shape, shape, dtype, None, True, "pos")

    def _matvec(self, x):
        return x

    _rmatvec = _matvec

    def _default_name(self):
        return "I"


def identity(shape, dtype=None):
    """The identity on tensors of `shape`."""
    return Identity((shape,) if isinstance(shape, int) else shape, dtype)


class Zero(LinearOperator):
    def __init__(self, domain_shape, range_shape=None, dtype=None):
        super().__init__(domain_shape, range_shape, dtype, None,
                         range_shape is None or tuple(range_shape) == tuple(domain_shape))

    def _matvec(self, x):
        from ..ops.creation import zeros
        return zeros(self.range_shape, dtype=x.dtype, device=x.device)

    def _rmatvec(self, y):
        from ..ops.creation import zeros
        return zeros(self.domain_shape, dtype=y.dtype, device=y.device)

    def _adjoint(self):
        return Zero(self.range_shape, self.domain_shape, self.dtype)

    def _default_name(self):
        return "0"


def zero(domain_shape, range_shape=None, dtype=None):
    """The zero operator."""
    norm = (lambda s: (s,) if isinstance(s, int) else s)
    return Zero(norm(domain_shape), None if range_shape is None else norm(range_shape), dtype)


class Restriction(LinearOperator):
    """Picks the entries at flat `indices` of a tensor of `domain_shape`; the
    adjoint scatters them back into zeros (repeated indices add)."""
    _tensor_attrs = ("idx",)

    def __init__(self, domain_shape, idx, name=None):
        super().__init__(domain_shape, (idx.shape[0],), None, name)
        self.idx = idx

    def _matvec(self, x):
        from ..ops.indexing import take
        return take(x.reshape((-1,)), self.idx)

    def _rmatvec(self, y):
        from ..ops.creation import zeros
        from ..ops.indexing import index_add
        z = zeros((_prod(self.domain_shape),), dtype=y.dtype, device=y.device)
        return index_add(z, self.idx, y).reshape(self.domain_shape)

    def _default_name(self):
        return f"R{shape_str(self)}"


def restriction(domain_shape, indices, name=None):
    """Restriction to a subset: `indices` are flat indices into a tensor of
    `domain_shape`, or a boolean mask of that shape (as PyLops' `Restriction`)."""
    from ..ops.creation import asarray
    domain_shape = (domain_shape,) if isinstance(domain_shape, int) else tuple(domain_shape)
    a = np.asarray(indices.numpy() if type(indices) is Tensor else indices)
    if a.dtype == bool:
        if a.shape != domain_shape:
            raise ShapeError(f"[linop.restriction] mask shape {a.shape} differs from the "
                             f"domain shape {domain_shape}")
        a = np.flatnonzero(a)
    a = a.astype(np.int64).reshape(-1)
    n = _prod(domain_shape)
    if a.size and (a.min() < -n or a.max() >= n):
        raise ShapeError(f"[linop.restriction] indices out of range for domain shape "
                         f"{domain_shape} ({n} elements): min {a.min()}, max {a.max()}")
    return Restriction(domain_shape, asarray(a % n if n else a), name)


def masking(mask, dtype="fp64", name=None):
    """x -> mask * x (a 0/1 diagonal, same shapes in and out)."""
    from ..ops.creation import asarray
    m = asarray(np.asarray(mask.numpy() if type(mask) is Tensor else mask, dtype=float),
                dtype=dtype)
    return Diagonal(m, name or f"Mask{m.shape}")


class FromFunction(LinearOperator):
    """`f(x, *params)` linear in x; the adjoint is the VJP from autodiff."""
    _tensor_attrs = ("params",)

    def __init__(self, f, domain_shape, range_shape, params, dtype, name, symmetric, definite):
        super().__init__(domain_shape, range_shape, dtype, name, symmetric, definite)
        self.f, self.params = f, tuple(params)

    def _matvec(self, x):
        return self.f(x, *self.params)

    def _default_name(self):
        return f"{getattr(self.f, '__name__', 'f')}{shape_str(self)}"


def from_function(f, domain_shape, range_shape=None, params=(), dtype=None, name=None,
                  symmetric=False, definite=None):
    """An operator from any linear tessera function `f(x, *params)` (as lineax's
    `FunctionLinearOperator`). Pass the tensors f depends on as `params`, so that
    solvers can differentiate through them. Without `range_shape` one probe call
    finds it. The adjoint is `f`'s VJP: no hand-written code."""
    domain_shape = (domain_shape,) if isinstance(domain_shape, int) else tuple(domain_shape)
    if range_shape is None:
        from ..autograd.grad_mode import no_grad
        from ..ops.creation import zeros
        with no_grad():
            range_shape = f(zeros(domain_shape, dtype=dtype or "fp64"), *params).shape
    return FromFunction(f, domain_shape, tuple(range_shape), params, dtype, name, symmetric,
                        definite)


# ---------------------------------------------------------------------------
class Kronecker(LinearOperator):
    """(A kron B) acting on X of shape A.domain + B.domain: A along the leading
    axes, B along the trailing ones (vec(A X B^T) in row-major order)."""
    _prec = 70

    def __init__(self, A, B):
        sym = A.symmetric and B.symmetric
        from .base import _promote
        super().__init__(A.domain_shape + B.domain_shape, A.range_shape + B.range_shape,
                         _promote(A.dtype, B.dtype), None, sym)
        self.ops = (A, B)

    @staticmethod
    def _apply(A, B, x, adj):
        from ..ops.linalg import matmul
        from ..ops.manipulation import stack
        fa = A._rmatvec if adj else A._matvec
        fb = B._rmatvec if adj else B._matvec
        ad, bd = (A.range_shape, B.range_shape) if adj else (A.domain_shape, B.domain_shape)
        ar, br = (A.domain_shape, B.domain_shape) if adj else (A.range_shape, B.range_shape)
        X = x.reshape((_prod(ad), _prod(bd)))
        if isinstance(B, MatrixOperator):  # dense factors become one matmul
            Y = matmul(X, B.M if adj else B.M.mT)
        else:
            Y = stack([fb(X[i].reshape(bd)).reshape((-1,)) for i in range(X.shape[0])])
        if isinstance(A, MatrixOperator):
            Z = matmul(A.M.mT if adj else A.M, Y)
        else:
            Z = stack([fa(Y[:, j].reshape(ad)).reshape((-1,)) for j in range(Y.shape[1])],
                      axis=1)
        return Z.reshape(ar + br)

    def _matvec(self, x):
        return self._apply(*self.ops, x, False)

    def _rmatvec(self, y):
        return self._apply(*self.ops, y, True)

    def _adjoint(self):
        return Kronecker(adjoint(self.ops[0]), adjoint(self.ops[1]))

    def expr(self):
        from .algebra import _wrap
        return self.name or f"kron({_wrap(self.ops[0], 0)}, {_wrap(self.ops[1], 0)})"


def kron(A, B):
    """The Kronecker product A (x) B; kron(I, I) is I."""
    if isinstance(A, Identity) and isinstance(B, Identity):
        return Identity(A.domain_shape + B.domain_shape)
    return Kronecker(A, B)


class Block(LinearOperator):
    """[[A00, A01, ...], [A10, ...]] on flat vectors: the domain is the
    concatenation of the column blocks' domains, the range that of the rows'.
    None entries are zero blocks."""

    def __init__(self, rows, diag=False):
        nr, nc = len(rows), len(rows[0])
        if any(len(r) != nc for r in rows):
            raise ShapeError("[linop.block] rows have different numbers of blocks: "
                             f"{[len(r) for r in rows]}")
        rsz, csz = [None] * nr, [None] * nc
        for i, r in enumerate(rows):
            for j, A in enumerate(r):
                if A is None:
                    continue
                for lst, k, v, what in ((rsz, i, A.shape[0], "row"), (csz, j, A.shape[1], "column")):
                    if lst[k] is None:
                        lst[k] = v
                    elif lst[k] != v:
                        raise ShapeError(f"[linop.block] block ({i}, {j}) {A!r} maps "
                                         f"{shape_str(A)}, but {what} {k} of the block "
                                         f"structure has {lst[k]} elements")
        if None in rsz or None in csz:
            raise ShapeError("[linop.block] every block row and column needs at least one "
                             "operator (None is a zero block)")
        from .base import _promote
        sym = diag and all(rows[i][i].symmetric for i in range(nr))
        super().__init__((sum(csz),), (sum(rsz),),
                         _promote(*(A.dtype for r in rows for A in r if A is not None)),
                         None, sym)
        self.rows, self.rsz, self.csz, self.diag = [list(r) for r in rows], rsz, csz, diag
        self.ops = tuple(A for r in rows for A in r if A is not None)

    def _rebuilt(self):
        it = iter(self.ops)
        self.rows = [[None if A is None else next(it) for A in r] for r in self.rows]

    @staticmethod
    def _apply(rows, insz, x, fname, outshape_of, inshape_of):
        from ..ops.manipulation import concat
        offs = np.concatenate([[0], np.cumsum(insz)]).tolist()
        parts = [x[offs[j]:offs[j + 1]] for j in range(len(insz))]
        outs = []
        for r in rows:
            acc = None
            for j, A in enumerate(r):
                if A is None:
                    continue
                y = getattr(A, fname)(parts[j].reshape(inshape_of(A))).reshape((-1,))
                acc = y if acc is None else acc + y
            outs.append(acc)
        return concat(outs)

    def _matvec(self, x):
        return self._apply(self.rows, self.csz, x, "_matvec", None, lambda A: A.domain_shape)

    def _rmatvec(self, y):
        cols = [[self.rows[i][j] for i in range(len(self.rows))] for j in range(len(self.csz))]
        return self._apply(cols, self.rsz, y, "_rmatvec", None, lambda A: A.range_shape)

    def _adjoint(self):
        nr, nc = len(self.rows), len(self.csz)
        return Block([[None if self.rows[i][j] is None else adjoint(self.rows[i][j])
                       for i in range(nr)] for j in range(nc)], self.diag)

    def expr(self):
        if self.name:
            return self.name
        if self.diag:
            return "block_diag(" + ", ".join(repr(A) for A in self.ops) + ")"
        return "block([" + ", ".join("[" + ", ".join("0" if A is None else repr(A) for A in r)
                                     + "]" for r in self.rows) + "])"


def block(rows):
    """A block operator from a list of rows of operators (None: a zero block),
    as PyLops' `Block` / `scipy.sparse.bmat`."""
    return Block(rows)


def block_diag(*ops):
    """The block-diagonal operator diag(A, B, ...)."""
    n = len(ops)
    return Block([[ops[i] if i == j else None for j in range(n)] for i in range(n)], diag=True)
