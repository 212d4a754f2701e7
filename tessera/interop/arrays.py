"""NumPy and CuPy <-> tessera tensors. A CPU tensor's buffer *is* a NumPy array
and a GPU tensor's a CuPy array, so these are views, not conversions, except
for the dtypes an array library lacks (NumPy gets bf16/fp8 through ml_dtypes;
CuPy has neither, see `to_cupy`).

>>> import numpy as np
>>> from tessera import interop
>>> a = np.arange(3.0)
>>> x = interop.from_numpy(a); a[0] = 9.0; x.tolist()
[9.0, 1.0, 2.0]
"""
from __future__ import annotations

import numpy as np

from ..errors import DeviceError, DTypeError
from ..tensor import Tensor
from ._optional import require


def from_numpy(a, *, copy=None):
    """A CPU tensor sharing NumPy array `a`'s memory (`copy=True` copies)."""
    if not isinstance(a, np.ndarray):
        raise DTypeError(f"[from_numpy] expected a numpy.ndarray, got {type(a).__name__}")
    from ..ops.creation import asarray
    return asarray(a, device="cpu", copy=copy)


def to_numpy(x, *, copy=None):
    """A NumPy array over a CPU tensor's memory (bf16/fp8 as ml_dtypes types); a
    GPU tensor is copied to the host, which `copy=False` refuses."""
    if not isinstance(x, Tensor):
        raise DTypeError(f"[to_numpy] expected a tessera.Tensor, got {type(x).__name__}")
    if x.device.type != "cpu" and copy is False:
        raise DeviceError(f"[to_numpy] the tensor is on {x.device}; NumPy arrays live on the "
                          "host, so this needs a copy, but copy=False")
    a = x.numpy()
    return a.copy() if copy else a


def from_cupy(a, *, copy=None):
    """A GPU tensor sharing CuPy array `a`'s memory (stream-ordered through DLPack)."""
    cupy = require("cupy", "from_cupy")
    if not isinstance(a, cupy.ndarray):
        raise DTypeError(f"[from_cupy] expected a cupy.ndarray, got {type(a).__name__}")
    from .dlpack import from_dlpack
    return from_dlpack(a, copy=copy)


def to_cupy(x, *, copy=None):
    """The CuPy array behind a GPU tensor. CuPy has no fp8 dtypes (and bf16 only
    from CuPy 14, as ml_dtypes' bfloat16): those raise (cast first, e.g.
    `to_cupy(x.astype("fp32"))`). A CPU tensor raises: nothing is copied across
    devices implicitly."""
    require("cupy", "to_cupy")
    if not isinstance(x, Tensor):
        raise DTypeError(f"[to_cupy] expected a tessera.Tensor, got {type(x).__name__}")
    if x.device.type == "cpu":
        raise DeviceError("[to_cupy] the tensor is on cpu; move it first with x.to('cuda')")
    if x.dtype.np_storage is None or x.device.backend.storage_dtype(x.dtype) != x.dtype.np_storage:
        raise DTypeError(f"[to_cupy] CuPy has no {x.dtype.name} dtype; cast first, e.g. "
                         f"to_cupy(x.astype('fp32'))")
    a = x.data
    return a.copy() if copy else a
