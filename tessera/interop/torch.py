"""PyTorch <-> tessera tensors over DLPack, zero-copy on a shared device.

`from_torch(t)` views a torch tensor's memory as a tessera tensor and `to_torch(x)`
the reverse; writes through either side are seen by the other. bf16, fp8, bool,
strided and zero-size tensors keep their dtype, strides and shape. Autograd
state is not carried (a torch tensor requiring grad is detached); for gradients
across the boundary use `tessera.interop.torch_function` / `from_torch_function`.

Speed: on the CPU both directions hand capsules straight to the C consumers
(`numpy.from_dlpack`, `torch.from_dlpack(capsule)`) and skip the Python-level
negotiation, which costs more than the conversion itself (benchmarks/interop.py).

>>> import torch
>>> from tessera import interop
>>> t = torch.zeros(3)
>>> x = interop.from_torch(t); t[1] = 2.0; x.tolist()
[0.0, 2.0, 0.0]
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..device import CPU, get_device
from ..errors import DTypeError
from ..tensor import Tensor, _new
from ._optional import require
from .dlpack import import_from

_BY_TORCH = {}  # torch dtype -> (tessera dtype, torch dtype of same-width words or None)


def _torch_dtypes(torch):
    if not _BY_TORCH:
        for d in _dt.ALL_DTYPES:
            td = getattr(torch, {"bool": "bool", "bf16": "bfloat16", "fp16": "float16",
                                 "fp32": "float32", "fp64": "float64",
                                 "fp8_e4m3": "float8_e4m3fn", "fp8_e5m2": "float8_e5m2"}
                         .get(d.name, d.name), None)
            if td is not None:
                words = {1: torch.uint8, 2: torch.int16}[d.itemsize] \
                    if d in (_dt.bf16, _dt.fp8_e4m3, _dt.fp8_e5m2) else None
                _BY_TORCH[td] = (d, words)
    return _BY_TORCH


def from_torch(t, *, device=None, copy=None):
    """A tessera tensor sharing `t`'s memory (torch CPU or CUDA tensor).
    `device`/`copy` as in `tessera.from_dlpack`."""
    torch = require("torch", "from_torch")
    if not isinstance(t, torch.Tensor):
        raise DTypeError(f"[from_torch] expected a torch.Tensor, got {type(t).__name__}")
    if t.requires_grad:
        t = t.detach()
    if t.is_conj() or t.is_neg():
        # Lazy conjugation/negation bits are not part of DLPack: materialize them.
        t = t.resolve_conj().resolve_neg()
    d = t.device
    if d.type == "cpu" and device is None and copy is None:
        hit = _torch_dtypes(torch).get(t.dtype)
        if hit is not None:
            dt, words = hit
            if words is None:
                arr = np.from_dlpack(t)
            else:  # NumPy's consumer has no bf16/fp8: take the words, view as ml_dtypes
                arr = np.from_dlpack(t.view(words)).view(dt.np_storage)
            return _new(arr, tuple(arr.shape), dt, CPU)
    # torch's own __dlpack_device__ costs ~5 us, more than the rest of the import
    src = CPU if d.type == "cpu" else get_device(f"cuda:{d.index or 0}")
    return import_from(t, src, device, copy)


def to_torch(x, *, device=None, copy=None):
    """A torch tensor sharing tessera tensor `x`'s memory, as `torch.from_dlpack`."""
    torch = require("torch", "to_torch")
    if not isinstance(x, Tensor):
        raise DTypeError(f"[to_torch] expected a tessera.Tensor, got {type(x).__name__}")
    if device is None and copy is None:
        if x.device is CPU:
            # no stream to negotiate: give torch the capsule itself
            return torch.from_dlpack(x.__dlpack__(max_version=(1, 0)))
        return torch.from_dlpack(x)
    return torch.from_dlpack(x, device=device, copy=copy)
