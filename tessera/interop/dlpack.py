"""DLPack for tessera: `Tensor.__dlpack__`, `Tensor.__dlpack_device__` and
`tessera.from_dlpack`, as the Python Array API standard (2023.12) defines them.

Export and import are zero-copy whenever the device matches: the consumer sees
the tensor's own buffer (strides included), so a write through one side is
visible through the other. A copy is made only where the standard allows one
(`copy=True`, `copy=None` with a layout the consumer cannot take, or a
`dl_device` other than the tensor's), and `copy=False` turns each such case
into a `DLPackError` (a `BufferError`) naming the reason.

dtypes: bf16 travels as kDLBfloat/16 and bool as kDLBool, on both devices (CuPy
stores bf16 as 16-bit words; the capsule still says bf16), fp8 as the DLPack 1.1
float8 codes. Negative strides are never exported: PyTorch aborts the process
on them, so such a view is copied (or refused with `copy=False`).

GPU streams: the producer records an event on tessera's current stream and makes
the consumer's stream wait on it; nothing waits for the whole device.

>>> import numpy as np, tessera as ts
>>> x = ts.asarray([1.0, 2.0, 3.0])
>>> y = ts.from_dlpack(x[::2])   # a strided view of the same memory
>>> x[2] = 7.0; y.tolist()
[1.0, 7.0]
"""
from __future__ import annotations

import enum

import numpy as np

from .. import dtypes as _dt
from ..device import CPU, Device, get_device
from ..errors import DeviceError, DTypeError, TesseraError
from ..tensor import Tensor, _new
from . import _capsule as C


class DLPackError(TesseraError, BufferError):
    """A tensor cannot be exported or imported as asked (device, copy, stream)."""


class DLDeviceType(enum.IntEnum):
    """DLPack device types (the ones tessera meets), as `__dlpack_device__` returns them."""
    kDLCPU = C.KDL_CPU
    kDLCUDA = C.KDL_CUDA
    kDLCUDAHost = C.KDL_CUDA_HOST
    kDLROCM = C.KDL_ROCM
    kDLCUDAManaged = C.KDL_CUDA_MANAGED


_CODES = {
    _dt.bool_: (C.KDL_BOOL, 8), _dt.bf16: (C.KDL_BFLOAT, 16),
    _dt.fp8_e4m3: (C.KDL_FLOAT8_E4M3FN, 8), _dt.fp8_e5m2: (C.KDL_FLOAT8_E5M2, 8),
}
for _d in _dt.ALL_DTYPES:
    if _d not in _CODES:
        _CODES[_d] = ({"i": C.KDL_INT, "u": C.KDL_UINT, "f": C.KDL_FLOAT,
                       "c": C.KDL_COMPLEX}[_d.kind], _d.bits)
_FROM_CODE = {v: k for k, v in _CODES.items()}
_CODE_NAMES = {C.KDL_INT: "int", C.KDL_UINT: "uint", C.KDL_FLOAT: "float", 3: "opaque handle",
               C.KDL_BFLOAT: "bfloat", C.KDL_COMPLEX: "complex", C.KDL_BOOL: "bool"}


def dtype_from_code(code, bits, lanes=1, op="from_dlpack"):
    """The tessera dtype of a DLPack (code, bits, lanes), or a DTypeError naming it."""
    d = _FROM_CODE.get((code, bits)) if lanes == 1 else None
    if d is None:
        name = f"{_CODE_NAMES.get(code, f'code {code}')}{bits}" + (f"x{lanes}" if lanes != 1 else "")
        raise DTypeError(f"[{op}] DLPack dtype {name} (code {code}, {bits} bits, {lanes} lanes) "
                         "has no tessera equivalent; accepted: "
                         + ", ".join(d.name for d in _dt.ALL_DTYPES))
    return d


def _is_hip():
    from ..backend.cupy_source import cupy
    return bool(getattr(cupy().cuda.runtime, "is_hip", False))


def _dl_device(dev: Device):
    if dev.type == "cpu":
        return (DLDeviceType.kDLCPU, 0)
    return (DLDeviceType.kDLROCM if _is_hip() else DLDeviceType.kDLCUDA, dev.index)


def __dlpack_device__(self):
    """`(device_type, device_id)` of this tensor's memory, as the Array API defines it."""
    return _dl_device(self.device)


# -- GPU streams --------------------------------------------------------------
def order_streams(cupy, consumer, op="__dlpack__"):
    """Make the consumer's stream (an Array API stream integer) wait for the work
    queued so far on tessera's current stream, through one event: the consumer
    never reads a buffer that a kernel is still writing, and no other stream or
    the host waits. `consumer=-1` asks for no ordering; that is only accepted when
    tessera's stream has nothing pending, since otherwise the consumer would read
    a tensor that the producer is still writing."""
    hip = bool(getattr(cupy.cuda.runtime, "is_hip", False))
    prod = cupy.cuda.get_current_stream()
    if consumer == -1:
        if not prod.done:
            raise DLPackError(
                f"[{op}] stream=-1 asks for no synchronization, but tessera's stream "
                f"{prod.ptr:#x} still has queued work that may write this tensor; pass the "
                "consumer's stream so that tessera orders it with an event")
        return None
    if consumer is None:
        consumer = 0 if hip else 1  # the legacy default stream, as the standard says
    if consumer == 0 and not hip:
        raise DLPackError(f"[{op}] stream=0 is ambiguous on CUDA (the standard disallows it); "
                          "pass 1 for the legacy default stream or 2 for the per-thread one")
    if not isinstance(consumer, int) or consumer < 0:
        raise DLPackError(f"[{op}] stream must be None, -1 or a stream handle (int), "
                          f"got {consumer!r}")
    mine = prod.ptr
    if mine == consumer or (mine == 0 and consumer == (0 if hip else 1)):
        return None  # same stream: already ordered
    ev = cupy.cuda.Event(block=False, disable_timing=True)
    ev.record(prod)
    cupy.cuda.ExternalStream(consumer).wait_event(ev)
    return ev


def _consumer_stream(dev):
    """The stream integer tessera passes as a consumer on `dev` (None on the CPU)."""
    if dev.type == "cpu":
        return None
    from ..backend.cupy_source import cupy
    ptr = cupy().cuda.get_current_stream().ptr
    return 1 if ptr == 0 and not _is_hip() else ptr


# -- export -------------------------------------------------------------------
_NARROW = {d: _CODES[d] for d in (_dt.bf16, _dt.fp8_e4m3, _dt.fp8_e5m2)}
_WORDS = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16)}


def _export_host(dt, buf, versioned, max_version, copy, copied):
    """A capsule over a host (NumPy) buffer. NumPy's C `__dlpack__` does the work;
    bf16/fp8 go through it as unsigned words and are relabelled."""
    negative = buf.ndim and min(buf.strides) < 0
    readonly = not buf.flags.writeable
    if copy or negative or (readonly and not versioned):
        if copy is False:
            why = (f"negative strides {buf.strides}, which PyTorch cannot take" if negative
                   else "a read-only buffer in a legacy (unversioned) capsule")
            raise DLPackError(f"[__dlpack__] exporting this {dt.name} tensor of shape "
                              f"{buf.shape} needs a copy ({why}), but copy=False")
        buf = np.array(buf, order="C")
        copied = True
    code = _NARROW.get(dt)
    exp = buf.view(_WORDS[dt.itemsize]) if code else buf
    cap = exp.__dlpack__(max_version=max_version) if versioned else exp.__dlpack__()
    if code or copied:
        C.relabel(cap, versioned, *(code or (None, None)), C.FLAG_IS_COPIED if copied else 0)
    return cap


def _export_device(self, buf, versioned, max_version, copy):
    """A capsule over a CuPy buffer, built by tessera (CuPy would label bf16 words uint16)."""
    plain = all(s >= 0 for s in buf.strides)
    flags = 0
    if copy or not plain:
        if copy is False:
            raise DLPackError(f"[__dlpack__] exporting this {self.dtype.name} tensor of shape "
                              f"{self.shape} needs a copy (negative strides {buf.strides}), "
                              "but copy=False")
        buf = buf.copy(order="C")
        flags = C.FLAG_IS_COPIED
    item = buf.itemsize
    code, bits = _CODES[self.dtype]
    dl = _dl_device(self.device)
    version = (1, min(int(max_version[1]), C.VERSION[1])) if versioned else C.VERSION
    return C.make_capsule(buf, buf.data.ptr, self.shape, tuple(s // item for s in buf.strides),
                          code, bits, int(dl[0]), dl[1], versioned, version, flags)


def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
    """Export this tensor as a DLPack capsule (Array API 2023.12 semantics).

    stream: the consumer's stream (GPU only; None on the CPU). max_version:
    the newest DLPack version the consumer reads; None gives a legacy capsule.
    dl_device: the device the consumer wants (the CPU for a GPU tensor copies to
    the host). copy: True always copies, False never does, None copies only when
    it must.

    >>> import torch, tessera as ts
    >>> x = ts.asarray([1.0, 2.0])
    >>> t = torch.from_dlpack(x); t[0] = 5.0; x.tolist()
    [5.0, 2.0]
    """
    dev = self.device
    buf = self.data
    versioned = max_version is not None and max_version[0] >= 1
    if dev.type == "cpu":
        if stream is not None:
            raise DLPackError(f"[__dlpack__] stream must be None for a tensor on the CPU, "
                              f"got {stream!r}")
        if dl_device is not None and int(dl_device[0]) != C.KDL_CPU:
            raise DLPackError(f"[__dlpack__] cannot export a tensor on cpu to DLPack device "
                              f"{tuple(dl_device)}; tessera.to_device first")
        return _export_host(self.dtype, buf, versioned, max_version, copy, False)
    own = _dl_device(dev)
    if dl_device is not None and (int(dl_device[0]), int(dl_device[1])) != (int(own[0]), own[1]):
        if int(dl_device[0]) != C.KDL_CPU:
            raise DLPackError(f"[__dlpack__] cannot export a tensor on {dev} to DLPack device "
                              f"{tuple(dl_device)}; only to {tuple(own)} or the CPU")
        if copy is False:
            raise DLPackError(f"[__dlpack__] dl_device=CPU for a tensor on {dev} needs a copy, "
                              "but copy=False")
        # cupy.asnumpy runs on tessera's current stream and waits for it: the copy is complete
        host = dev.backend.xp.asnumpy(buf)
        return _export_host(self.dtype, host, versioned, max_version, False, True)
    from ..backend.cupy_source import cupy
    order_streams(cupy(), stream)
    return _export_device(self, buf, versioned, max_version, copy)


# -- import -------------------------------------------------------------------
def _source_device(x):
    typ, idx = x.__dlpack_device__()
    typ = int(typ)
    if typ in (C.KDL_CPU, C.KDL_CUDA_HOST):
        return CPU
    if typ in (C.KDL_CUDA, C.KDL_ROCM, C.KDL_CUDA_MANAGED):
        return get_device(f"cuda:{int(idx)}")
    raise DeviceError(f"[from_dlpack] DLPack device type {typ} (id {idx}) is not one tessera "
                      "runs on; accepted: CPU, CUDA host, CUDA, CUDA managed, ROCm")


def _capsule_from(x, kwargs):
    """Call `x.__dlpack__`, dropping the keywords an older producer does not take
    (newest first, as consumers do). Returns the capsule and whether `copy` was
    passed to (and so honoured by) the producer."""
    keys = ["max_version", "dl_device", "copy"]
    while True:
        try:
            return x.__dlpack__(**kwargs), "copy" in kwargs
        except TypeError:
            if not keys:
                raise
            kwargs.pop(keys.pop(0), None)


def from_dlpack(x, /, *, device=None, copy=None):
    """A tessera tensor sharing the memory of any DLPack producer (PyTorch, JAX,
    NumPy, CuPy, ...), as the Array API `from_dlpack`. `device` other than the
    producer's asks the producer for a copy there (or copies after import);
    `copy=True` always copies, `copy=False` raises where a copy would be needed.

    >>> import numpy as np, tessera as ts
    >>> a = np.zeros(3, np.float32)
    >>> t = ts.from_dlpack(a); a[1] = 4.0; t.tolist()
    [0.0, 4.0, 0.0]
    """
    if isinstance(x, Tensor):
        from ..ops.creation import asarray
        if device is not None and get_device(device) is not x.device and copy is False:
            raise DeviceError(f"[from_dlpack] moving a tensor from {x.device} to {device} "
                              "needs a copy, but copy=False")
        return asarray(x, device=device, copy=copy)
    if not hasattr(x, "__dlpack__"):
        raise DTypeError(f"[from_dlpack] {type(x).__name__} is not a DLPack producer (it has no "
                         "__dlpack__ method); use tessera.asarray for lists and scalars")
    return import_from(x, _source_device(x), device, copy)


def import_from(x, src, device=None, copy=None):
    """`from_dlpack` for a producer whose device `src` the caller already knows
    (asking PyTorch for `__dlpack_device__` costs more than the rest of the import)."""
    dev = src if device is None else get_device(device)
    kwargs = {"stream": _consumer_stream(dev), "max_version": C.VERSION, "copy": copy}
    if src is not dev:
        if copy is False:
            raise DeviceError(f"[from_dlpack] the producer's memory is on {src} and device={dev} "
                              "was asked: that needs a copy, but copy=False")
        kwargs["dl_device"] = _dl_device(dev)
    cap, copy_honoured = _capsule_from(x, kwargs)
    p = C.peek(cap)
    dt = dtype_from_code(p.code, p.bits, p.lanes)
    narrow = dt in _NARROW
    if narrow:  # NumPy and CuPy know neither bf16 nor fp8: they take same-width words
        C.relabel(cap, p.versioned, C.KDL_UINT, p.bits)
    if p.device_type in (C.KDL_CPU, C.KDL_CUDA_HOST):
        if dt.np_storage is None:
            raise DTypeError(f"[from_dlpack] {dt.name} needs ml_dtypes on the CPU: "
                             "pip install ml_dtypes")
        arr = np.from_dlpack(p)
        if narrow:
            arr = arr.view(dt.np_storage)
        got = CPU
    else:
        from ._optional import require
        arr = require("cupy", "from_dlpack").from_dlpack(p)
        got = get_device(f"cuda:{p.device_id}")
    t = _new(arr, tuple(arr.shape), dt, got)
    if got is not dev:
        from ..ops.creation import to_device
        t = to_device(t, dev)
    elif copy and not copy_honoured:
        from ..ops.movement import copy as _copy
        t = _copy(t)
    return t
