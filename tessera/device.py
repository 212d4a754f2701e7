"""Devices: parsing "cpu" / "cuda" / "cuda:1", the default device, and the
backend each device is served by.

The default is `cuda` where CuPy finds a usable GPU, else `cpu`; `TESSERA_DEVICE`
and `set_default_device` override it. CuPy is probed lazily, the first time a
default device is needed, so `import tessera` never touches CUDA.
"""
from __future__ import annotations

import os

from .errors import ConfigError, DeviceError


class Device:
    """A device: `type` is "cpu" or "cuda" (CuPy's ROCm build also reports "cuda",
    as PyTorch does), `index` the GPU ordinal. One object per device."""

    __slots__ = ("type", "index", "_backend", "_str")
    _interned: dict = {}

    def __new__(cls, type_, index=0):
        key = (type_, index)
        dev = cls._interned.get(key)
        if dev is None:
            dev = object.__new__(cls)
            dev.type = type_
            dev.index = index
            dev._backend = None
            dev._str = type_ if type_ == "cpu" else f"{type_}:{index}"
            cls._interned[key] = dev
        return dev

    @property
    def backend(self):
        b = self._backend
        if b is None:
            from .backend import backend_for
            b = self._backend = backend_for(self)
        return b

    def __repr__(self):
        return f"device('{self._str}')"

    def __str__(self):
        return self._str

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = get_device(other)
            except DeviceError:
                return False
        return self is other

    def __hash__(self):
        return hash(self._str)

    def __reduce__(self):
        return (get_device, (self._str,))


CPU = Device("cpu", 0)
_default = None


def get_device(spec=None) -> Device:
    """Resolve "cpu", "cuda", "cuda:N", a Device, None (the default device), or a
    torch/cupy-like object with `.type`/`.index` or `.id`."""
    if spec is None:
        return default_device()
    if type(spec) is Device:
        return spec
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s == "cpu":
            return CPU
        if s in ("cuda", "gpu", "rocm", "hip"):
            return _check_cuda(Device("cuda", _current_cuda_index()))
        for prefix in ("cuda:", "gpu:", "rocm:", "hip:"):
            if s.startswith(prefix):
                try:
                    idx = int(s[len(prefix):])
                except ValueError:
                    break
                return _check_cuda(Device("cuda", idx))
        raise DeviceError(f"unknown device {spec!r}; accepted: 'cpu', 'cuda', 'cuda:N'")
    typ = getattr(spec, "type", None)
    if typ in ("cpu", "cuda"):
        idx = getattr(spec, "index", None)
        return CPU if typ == "cpu" else _check_cuda(Device("cuda", idx or 0))
    raise DeviceError(f"cannot interpret {spec!r} as a device; accepted: 'cpu', 'cuda', 'cuda:N'")


def _current_cuda_index():
    return 0


def cuda_device_count() -> int:
    """How many GPUs CuPy can use; 0 when CuPy or a driver is missing."""
    try:
        from .backend.cupy_source import cupy
        return int(cupy().cuda.runtime.getDeviceCount())
    except ConfigError:  # TESSERA_CUDA_SIM set to something unknown: say so
        raise
    except Exception:  # no cupy, no driver, no device: all mean "no GPU"
        return 0


def cuda_is_available() -> bool:
    return cuda_device_count() > 0


def _check_cuda(dev: Device) -> Device:
    n = cuda_device_count()
    if dev.index >= n:
        why = "no CUDA/ROCm GPU is usable (CuPy missing or no device)" if n == 0 \
            else f"only {n} GPU(s) present"
        raise DeviceError(f"device {dev} is not available: {why}")
    return dev


def default_device() -> Device:
    global _default
    if _default is None:
        env = os.environ.get("TESSERA_DEVICE")
        if env:
            _default = get_device(env)
        else:
            _default = Device("cuda", 0) if cuda_is_available() else CPU
    return _default


def set_default_device(spec) -> Device:
    """Set the device that creation functions use when none is given."""
    global _default
    _default = get_device(spec)
    return _default
