"""What Array API consumers (SciPy, scikit-learn's array_api_dispatch,
array-api-compat) ask a namespace about itself: `__array_namespace_info__()` and
`can_cast`."""
from __future__ import annotations

from . import dtypes as _dt

__array_api_version__ = "2023.12"


class _Info:
    """The object `tessera.__array_namespace_info__()` returns."""

    def capabilities(self):
        # boolean indexing and nonzero give data-dependent shapes: supported (eager)
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def default_device(self):
        from .device import default_device
        return default_device()

    def default_dtypes(self, *, device=None):
        return {"real floating": _dt.fp32, "complex floating": _dt.complex64,
                "integral": _dt.int64, "indexing": _dt.int64}

    def devices(self):
        from .device import CPU, Device, cuda_device_count
        return [CPU] + [Device("cuda", i) for i in range(cuda_device_count())]

    def dtypes(self, *, device=None, kind=None):
        out = {}
        for d in (_dt.bool_, _dt.int8, _dt.int16, _dt.int32, _dt.int64, _dt.uint8, _dt.fp16,
                  _dt.bf16, _dt.fp32, _dt.fp64, _dt.complex64, _dt.complex128):
            if kind is None or _dt.isdtype(d, kind):
                out[d.name] = d
        return out


def __array_namespace_info__():
    return _Info()


def can_cast(from_, to):
    """True when `from_` promotes to `to` without loss, as the Array API `can_cast`."""
    a = from_.dtype if hasattr(from_, "dtype") and not isinstance(from_, _dt.DType) else from_
    a, b = _dt.get_dtype(a), _dt.get_dtype(to)
    return _dt.promote(a, b) is b
