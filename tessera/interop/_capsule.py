"""The DLPack C structures in ctypes: building a capsule around a buffer pointer
(export) and reading one back into a NumPy array or a raw description (import).

NumPy's own `__dlpack__` cannot export bf16 or fp8 (ml_dtypes types) and CuPy
stores those as unsigned words, so tessera writes its capsules itself: one
layout for every dtype and both devices. The layouts follow `dlpack.h` 1.1:
`DLManagedTensor` in a capsule named "dltensor" (legacy, when the consumer
passes no `max_version`) and `DLManagedTensorVersioned` in "dltensor_versioned".

On the CPU most of the work is left to NumPy's C implementation (fast, and it
owns the lifetime rules): tessera only reads a capsule's header (`peek`) and
relabels the dtype of bf16/fp8 buffers that travel as unsigned words (`relabel`).
`make_capsule` builds a capsule from scratch (GPU buffers, and any buffer NumPy
cannot describe): it keeps the array, struct and shape/stride arrays in `_LIVE`
under the struct's address until the consumer calls the deleter (or the capsule
dies unconsumed, in which case its destructor calls it).
"""
from __future__ import annotations

import ctypes
import struct
from ctypes import (CFUNCTYPE, Structure, c_char_p, c_int32, c_int64, c_uint8,
                    c_uint16, c_uint32, c_uint64, c_void_p)

# Device types (DLDeviceType) tessera produces or accepts.
KDL_CPU, KDL_CUDA, KDL_CUDA_HOST, KDL_ROCM, KDL_CUDA_MANAGED = 1, 2, 3, 10, 13
# Type codes (DLDataTypeCode).
KDL_INT, KDL_UINT, KDL_FLOAT, KDL_BFLOAT, KDL_COMPLEX, KDL_BOOL = 0, 1, 2, 4, 5, 6
KDL_FLOAT8_E4M3FN, KDL_FLOAT8_E5M2 = 10, 12
FLAG_READ_ONLY, FLAG_IS_COPIED = 1, 2
VERSION = (1, 1)


class DLDevice(Structure):
    _fields_ = [("device_type", c_int32), ("device_id", c_int32)]


class DLDataType(Structure):
    _fields_ = [("code", c_uint8), ("bits", c_uint8), ("lanes", c_uint16)]


class DLTensor(Structure):
    _fields_ = [("data", c_void_p), ("device", DLDevice), ("ndim", c_int32),
                ("dtype", DLDataType),
                # int64_t* in dlpack.h; void* here so that addresses are assigned as ints
                ("shape", c_void_p), ("strides", c_void_p), ("byte_offset", c_uint64)]


# Deleters take the managed struct's address; declaring it c_void_p for both
# layouts lets one Python callback serve both.
_DELETER = CFUNCTYPE(None, c_void_p)


class DLManagedTensor(Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", c_void_p), ("deleter", _DELETER)]


class DLPackVersion(Structure):
    _fields_ = [("major", c_uint32), ("minor", c_uint32)]


class DLManagedTensorVersioned(Structure):
    _fields_ = [("version", DLPackVersion), ("manager_ctx", c_void_p), ("deleter", _DELETER),
                ("flags", c_uint64), ("dl_tensor", DLTensor)]


_api = ctypes.pythonapi
_CAPSULE_DTOR = CFUNCTYPE(None, c_void_p)
_api.PyCapsule_New.restype = ctypes.py_object
_api.PyCapsule_New.argtypes = [c_void_p, c_char_p, _CAPSULE_DTOR]
# The destructor receives a capsule whose refcount is already 0: it must be
# handled as a raw pointer (a py_object argument would resurrect it).
_api.PyCapsule_IsValid.restype = ctypes.c_int
_api.PyCapsule_IsValid.argtypes = [c_void_p, c_char_p]
_api.PyCapsule_GetPointer.restype = c_void_p
_api.PyCapsule_GetPointer.argtypes = [c_void_p, c_char_p]
_api.PyCapsule_SetName.restype = ctypes.c_int
_api.PyCapsule_SetName.argtypes = [ctypes.py_object, c_char_p]
_api.PyCapsule_GetName.restype = c_char_p
_api.PyCapsule_GetName.argtypes = [ctypes.py_object]
# GetPointer on a live capsule (a Python object), next to the raw-pointer one above.
_get_pointer = ctypes.PYFUNCTYPE(c_void_p, ctypes.py_object, c_char_p)(
    ("PyCapsule_GetPointer", _api))

# Names must outlive every capsule: module-level bytes objects do.
NAME_LEGACY, NAME_VERSIONED = b"dltensor", b"dltensor_versioned"
USED_LEGACY, USED_VERSIONED = b"used_dltensor", b"used_dltensor_versioned"

_LIVE: dict = {}  # struct address -> everything the exported view keeps alive


def _deleter(addr):
    _LIVE.pop(addr, None)


_DELETER_FN = _DELETER(_deleter)


def _capsule_dtor(cap):
    # Unconsumed capsule: the consumer never took ownership, so release it here.
    for name in (NAME_LEGACY, NAME_VERSIONED):
        if _api.PyCapsule_IsValid(cap, name):
            _deleter(_api.PyCapsule_GetPointer(cap, name))
            return


_CAPSULE_DTOR_FN = _CAPSULE_DTOR(_capsule_dtor)


def make_capsule(owner, data_ptr, shape, strides, code, bits, device_type, device_id,
                 versioned, version=VERSION, flags=0):
    """A DLPack capsule describing `data_ptr` (strides in elements); `owner` is
    kept alive until the consumer calls the deleter."""
    nd = len(shape)
    dims = (c_int64 * (2 * nd))(*shape, *strides)  # one allocation for shape and strides
    m = (DLManagedTensorVersioned if versioned else DLManagedTensor)()
    t = m.dl_tensor
    t.data = data_ptr
    t.device.device_type = device_type
    t.device.device_id = device_id
    t.ndim = nd
    t.dtype.code = code
    t.dtype.bits = bits
    t.dtype.lanes = 1
    base = ctypes.addressof(dims)
    t.shape = base
    t.strides = base + 8 * nd
    m.deleter = _DELETER_FN
    addr = ctypes.addressof(m)
    if versioned:
        m.version.major, m.version.minor = version
        m.flags = flags
    _LIVE[addr] = (m, dims, owner)
    return _api.PyCapsule_New(addr, NAME_VERSIONED if versioned else NAME_LEGACY,
                              _CAPSULE_DTOR_FN)


_TENSOR = struct.Struct("@QiiiBBH")  # DLTensor up to dtype: data, device, ndim, dtype
_VERSIONED = struct.Struct("@IIQQQ")  # version, manager_ctx, deleter, flags
_VERSIONED_AT = DLManagedTensorVersioned.dl_tensor.offset
_FLAGS_AT = DLManagedTensorVersioned.flags.offset
_CODE_AT = DLTensor.dtype.offset
assert _VERSIONED_AT == _VERSIONED.size and _CODE_AT == 20


class Peek:
    """What an unconsumed capsule describes (read without taking ownership):
    the DLTensor's address, dtype (code, bits, lanes), device and flags."""
    __slots__ = ("capsule", "tensor_addr", "managed_addr", "versioned", "code", "bits",
                 "lanes", "device_type", "device_id", "flags")

    def __dlpack__(self, **kwargs):
        # Lets a consumer that takes producers (np.from_dlpack, cupy.from_dlpack)
        # take this already-negotiated capsule.
        return self.capsule

    def __dlpack_device__(self):
        return (self.device_type, self.device_id)


def peek(capsule):
    """Describe a DLPack capsule of either layout; raises BufferError for anything else.
    One read of the header: each ctypes call costs about a microsecond."""
    name = _api.PyCapsule_GetName(capsule)
    p = Peek()
    if name == NAME_VERSIONED:
        addr = _get_pointer(capsule, NAME_VERSIONED)
        raw = ctypes.string_at(addr, _VERSIONED_AT + _TENSOR.size)
        major, minor, _, _, p.flags = _VERSIONED.unpack_from(raw)
        if major > VERSION[0]:
            raise BufferError(f"[from_dlpack] DLPack version {major}.{minor} is newer than "
                              f"{VERSION[0]}.x, which tessera reads")
        p.managed_addr, p.tensor_addr, p.versioned = addr, addr + _VERSIONED_AT, True
        off = _VERSIONED_AT
    elif name == NAME_LEGACY:
        addr = _get_pointer(capsule, NAME_LEGACY)
        raw = ctypes.string_at(addr, _TENSOR.size)
        p.managed_addr = p.tensor_addr = addr
        p.flags, p.versioned, off = 0, False, 0
    else:
        raise BufferError(f"[from_dlpack] expected an unconsumed DLPack capsule, got one named "
                          f"{name!r} (a capsule can be consumed once)")
    (_, p.device_type, p.device_id, _, p.code, p.bits,
     p.lanes) = _TENSOR.unpack_from(raw, off)
    p.capsule = capsule
    return p


def relabel(capsule, versioned, code=None, bits=None, add_flags=0):
    """Rewrite the dtype (and add flags) of a capsule not yet consumed. tessera
    passes bf16/fp8 through NumPy/CuPy as same-width unsigned words and relabels
    them (and the reverse on import), which keeps those libraries' ownership
    handling. Returns the capsule."""
    addr = _get_pointer(capsule, NAME_VERSIONED if versioned else NAME_LEGACY)
    t = addr + _VERSIONED_AT if versioned else addr
    if code is not None:
        ctypes.memmove(t + _CODE_AT, bytes((code, bits)), 2)
    if add_flags and versioned:
        flags = struct.unpack("@Q", ctypes.string_at(addr + _FLAGS_AT, 8))[0] | add_flags
        ctypes.memmove(addr + _FLAGS_AT, struct.pack("@Q", flags), 8)
    return capsule
