"""The simulated `cupyx`: `scatter_add` and friends, `cupyx.scipy.special`, over NumPy/SciPy."""
from __future__ import annotations

import numpy as np

from .cupy_api import _Namespace
from .ndarray import ndarray, unwrap, unwrap_operand, wrap


def _scatter(ufunc):
    def f(a, slices, value):
        if not isinstance(a, ndarray):
            raise TypeError(f"Unsupported type {type(a)}")
        ufunc.at(a._a, unwrap(slices), unwrap_operand(value))
    return f


scatter_add = _scatter(np.add)
scatter_max = _scatter(np.maximum)
scatter_min = _scatter(np.minimum)


class csr_matrix:  # noqa: N801 - cupyx.scipy.sparse's name
    """A CSR matrix on the simulated device: SciPy's, with device arrays at the edges."""
    __module__ = "cupyx.scipy.sparse"

    def __init__(self, arg, shape=None, dtype=None, copy=False):
        import scipy.sparse as ssp
        if isinstance(arg, csr_matrix):
            self._m = arg._m.copy() if copy else arg._m
        elif isinstance(arg, tuple):
            self._m = ssp.csr_matrix(tuple(unwrap(a) for a in arg), shape=shape, dtype=dtype)
        else:
            self._m = ssp.csr_matrix(unwrap(arg), shape=shape, dtype=dtype)

    @classmethod
    def _of(cls, m):
        self = object.__new__(cls)
        self._m = m.tocsr()
        return self

    shape = property(lambda self: self._m.shape)
    dtype = property(lambda self: self._m.dtype)
    nnz = property(lambda self: self._m.nnz)
    data = property(lambda self: wrap(self._m.data))
    indices = property(lambda self: wrap(self._m.indices))
    indptr = property(lambda self: wrap(self._m.indptr))
    T = property(lambda self: csr_matrix._of(self._m.T))

    def tocsr(self, copy=False):
        return self

    def transpose(self):
        return self.T

    def toarray(self):
        return wrap(self._m.toarray())

    def __matmul__(self, x):
        if isinstance(x, csr_matrix):
            return csr_matrix._of(self._m @ x._m)
        return wrap(self._m @ unwrap_operand(x))

    dot = __matmul__

    def __mul__(self, x):
        return self.__matmul__(x) if isinstance(x, ndarray) else csr_matrix._of(self._m * x)


class _Sparse:
    csr_matrix = csr_matrix

    @staticmethod
    def issparse(x):
        return isinstance(x, csr_matrix)

    isspmatrix = issparse

    @staticmethod
    def isspmatrix_csr(x):
        return isinstance(x, csr_matrix)


class _Scipy:
    sparse = _Sparse()

    @property
    def special(self):
        import scipy.special
        ns = _Namespace(scipy.special)
        self.__dict__["special"] = ns
        return ns


scipy = _Scipy()
