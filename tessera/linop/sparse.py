"""Sparse (CSR) operators. The matrix lives in the backend's sparse module
(`scipy.sparse` on the CPU, `cupyx.scipy.sparse` on a GPU, both imported only
when a sparse operator is made); the product is one op whose VJP in x is the
transpose product and whose VJP in the stored values (when they require grad)
is g[row] * x[col] per entry.

>>> import numpy as np, tessera as ts
>>> from tessera import linop
>>> S = linop.csr([2.0, 3.0], [1, 0], [0, 1, 2], (2, 2))
>>> S.matvec(ts.asarray([1.0, 1.0])).tolist()
[2.0, 3.0]
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ops._dispatch import apply_op
from ..tensor import Tensor
from .base import LinearOperator

__all__ = ["SparseOperator", "csr", "sparse"]


def _sparse_module(xp):
    if xp is np:
        import scipy.sparse as sp
        return sp
    from ..backend.cupy_source import cupyx  # a GPU backend: xp is cupy
    return cupyx().scipy.sparse


class SparseOperator(LinearOperator):
    """A CSR matrix (m x n) acting on vectors of n elements; `data` is a tensor
    (differentiable), `indices`/`indptr` integer arrays."""
    _tensor_attrs = ("data",)

    def __init__(self, data, indices, indptr, shape, name=None, symmetric=False, definite=None):
        super().__init__((shape[1],), (shape[0],), data.dtype, name, symmetric, definite)
        self.data, self.indices, self.indptr = data, indices, indptr
        self._rebuilt()

    def _rebuilt(self):
        xp = self.data.device.backend.xp
        sp = _sparse_module(xp)
        m, n = self.shape
        ind, ptr = xp.asarray(self.indices), xp.asarray(self.indptr)
        self._S = sp.csr_matrix((self.data.data, ind, ptr), shape=(m, n))
        self._ST = None
        # row of every stored entry, for the gradient in the values
        self._rows = np.repeat(np.arange(m), np.diff(np.asarray(self.indptr)))

    def _apply(self, x, transpose):
        S = self._S
        if transpose:
            if self._ST is None:
                self._ST = S.T.tocsr()
            S = self._ST
        data = self.data
        xs = x.detach() if data.requires_grad else None

        def fwd(xb, db=None):
            return (S @ xb).astype(xb.dtype, copy=False)

        def vjp(g):
            from ..ops.indexing import take
            from ..ops.creation import asarray
            gx = self._apply(g, not transpose)
            gd = None
            if data.requires_grad:
                rows = asarray(self._rows, device=g.device)
                cols = asarray(np.asarray(self.indices), device=g.device)
                gd = take(g, cols) * take(xs, rows) if transpose else take(g, rows) * take(xs, cols)
            return (gx, gd)
        return apply_op("linop.csr_matvec", (x, data), fwd, x.dtype, x.device, vjp,
                        saved=(xs,) if xs is not None else ())

    def _matvec(self, x):
        return self._apply(x, False)

    def _rmatvec(self, y):
        return self._apply(y, True)

    def to_dense(self, dtype=None, device=None):
        from ..ops.creation import asarray
        d = asarray(self._S.toarray(), device=self.data.device)
        return d if dtype is None else d.astype(dtype)

    def _default_name(self):
        return f"CSR{self.shape}[nnz={int(np.asarray(self.indptr)[-1])}]"


def csr(data, indices, indptr, shape, name=None, symmetric=False, definite=None):
    """A CSR operator from its three arrays (as `scipy.sparse.csr_matrix((data,
    indices, indptr), shape)`)."""
    from ..ops.creation import asarray
    d = data if type(data) is Tensor else asarray(np.asarray(data, dtype=np.float64))
    ind = np.asarray(indices.numpy() if type(indices) is Tensor else indices, dtype=np.int32)
    ptr = np.asarray(indptr.numpy() if type(indptr) is Tensor else indptr, dtype=np.int32)
    m, n = shape
    if ptr.shape != (m + 1,) or ind.shape != (d.shape[0],) or d.ndim != 1:
        raise ShapeError(f"[linop.csr] inconsistent CSR arrays for shape {shape}: data "
                         f"{d.shape}, indices {ind.shape}, indptr {ptr.shape} (expected "
                         f"indptr ({m + 1},) and as many indices as values)")
    if ind.size and (ind.min() < 0 or ind.max() >= n):
        raise ShapeError(f"[linop.csr] column indices out of range [0, {n}) for shape {shape}")
    return SparseOperator(d, ind, ptr, (m, n), name, symmetric, definite)


def sparse(S, name=None, symmetric=False, definite=None):
    """An operator from a SciPy (or CuPy) sparse matrix, stored as CSR."""
    from ..ops.creation import asarray
    S = S.tocsr()
    dev = None
    if type(S).__module__.startswith("cupyx"):
        dev = "cuda"
    data = asarray(S.data, device=dev)
    host = (lambda a: a.get() if hasattr(a, "get") else np.asarray(a))  # index arrays on the host
    return SparseOperator(data, host(S.indices), host(S.indptr), S.shape, name, symmetric,
                          definite)
