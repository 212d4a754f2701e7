"""The simulated `cupyx`: `scatter_add` and friends, `cupyx.scipy.special`, over NumPy/SciPy."""
from __future__ import annotations

import numpy as np

from .cupy_api import _Namespace
from .ndarray import ndarray, unwrap, unwrap_operand


def _scatter(ufunc):
    def f(a, slices, value):
        if not isinstance(a, ndarray):
            raise TypeError(f"Unsupported type {type(a)}")
        ufunc.at(a._a, unwrap(slices), unwrap_operand(value))
    return f


scatter_add = _scatter(np.add)
scatter_max = _scatter(np.maximum)
scatter_min = _scatter(np.minimum)


class _Scipy:
    @property
    def special(self):
        import scipy.special
        ns = _Namespace(scipy.special)
        self.__dict__["special"] = ns
        return ns


scipy = _Scipy()
