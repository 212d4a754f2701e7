"""The simulated `cupy.cuda`: devices with settable properties, streams, events,
and the runtime/driver/compiler names tessera reaches for.

The device properties are those a kernel launch depends on (warp size, SM
count, compute capability, shared-memory limits, block limits, CUDA vs HIP).
`configure` changes them, so the HIP geometry (64-wide warps) and small
shared-memory devices run on a CPU too:

    >>> from tessera.sim import cuda
    >>> cuda.configure(platform="hip").warp_size
    64
    >>> _ = cuda.configure(platform="cuda")
"""
from __future__ import annotations

import dataclasses
import time
import types


@dataclasses.dataclass
class Properties:
    """What one simulated device reports. Defaults: an H100/H200-class part for
    CUDA, an MI200-class one (gfx90a) for HIP."""
    platform: str = "cuda"
    name: str = "tessera simulated GPU (sm_90)"
    cc: tuple = (9, 0)
    gcn_arch: str = "gfx90a:sramecc+:xnack-"
    warp_size: int = 32
    sm_count: int = 132
    shared_per_block: int = 48 * 1024
    shared_per_block_optin: int = 227 * 1024
    max_threads_per_block: int = 1024
    max_block: tuple = (1024, 1024, 64)
    max_grid: tuple = (2 ** 31 - 1, 65535, 65535)
    total_memory: int = 80 * 2 ** 30
    # instructions the CPU emulator cannot run (inline PTX such as int8 mma.sync):
    # reported here so that launchers route to the portable kernels
    emulated: bool = True

    def as_dict(self):
        d = {"name": self.name.encode(), "warpSize": self.warp_size,
             "multiProcessorCount": self.sm_count, "major": self.cc[0], "minor": self.cc[1],
             "sharedMemPerBlock": self.shared_per_block,
             "sharedMemPerBlockOptin": self.shared_per_block_optin,
             "sharedMemPerMultiprocessor": self.shared_per_block_optin + 1024,
             "maxThreadsPerBlock": self.max_threads_per_block,
             "maxThreadsDim": self.max_block, "maxGridSize": self.max_grid,
             "totalGlobalMem": self.total_memory, "clockRate": 1_980_000,
             "tesseraEmulated": int(self.emulated)}
        if self.platform == "hip":
            d["gcnArchName"] = self.gcn_arch.encode()
        return d


_PRESETS = {
    "cuda": dict(platform="cuda", name="tessera simulated GPU (sm_90)", cc=(9, 0), warp_size=32,
                 sm_count=132, shared_per_block=48 * 1024, shared_per_block_optin=227 * 1024),
    "hip": dict(platform="hip", name="tessera simulated GPU (gfx90a)", cc=(9, 0), warp_size=64,
                sm_count=110, shared_per_block=64 * 1024, shared_per_block_optin=64 * 1024),
}


class _State:
    def __init__(self):
        self.props = [Properties()]
        self.current = 0

    @property
    def is_hip(self):
        return self.props[0].platform == "hip"


_state = _State()


def configure(platform=None, devices=None, **fields):
    """Set the simulated devices' properties (every device alike); returns device
    0's. `platform` "cuda" or "hip" loads that preset first; `fields` are
    `Properties` fields (warp_size, sm_count, cc, shared_per_block_optin, ...)."""
    base = dataclasses.asdict(_state.props[0])
    if platform is not None:
        if platform not in _PRESETS:
            raise ValueError(f"[sim] unknown platform {platform!r}; accepted: cuda, hip")
        base.update(_PRESETS[platform])
    for k in fields:
        if k not in base:
            raise ValueError(f"[sim] unknown device property {k!r}; accepted: {', '.join(base)}")
    base.update(fields)
    n = len(_state.props) if devices is None else int(devices)
    _state.props = [Properties(**base) for _ in range(n)]
    _state.current = min(_state.current, n - 1)
    runtime.is_hip = _state.is_hip
    return _state.props[0]


# ---- errors ----
class CUDADriverError(RuntimeError):
    pass


class CUDARuntimeError(RuntimeError):
    pass


class CompileException(Exception):
    def __init__(self, msg, source="", name="", options=()):
        super().__init__(msg)
        self.source, self.name, self.options = source, name, options

    def get_message(self):
        return str(self)


driver = types.SimpleNamespace(CUDADriverError=CUDADriverError)
compiler = types.SimpleNamespace(CompileException=CompileException)


def _check_index(i):
    if not 0 <= i < len(_state.props):
        raise CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {i} "
                               f"({len(_state.props)} simulated device(s))")
    return i


class Device:
    """As `cupy.cuda.Device`: `Device()` is the current device; a context manager."""

    def __init__(self, device=None):
        self.id = _state.current if device is None else _check_index(int(getattr(device, "id", device)))
        self._prev = []

    @property
    def compute_capability(self):
        major, minor = _state.props[self.id].cc
        return f"{major}{minor}"

    @property
    def attributes(self):
        p = _state.props[self.id]
        return {"MultiProcessorCount": p.sm_count, "WarpSize": p.warp_size,
                "MaxSharedMemoryPerBlockOptin": p.shared_per_block_optin,
                "MaxThreadsPerBlock": p.max_threads_per_block}

    def use(self):
        _state.current = self.id

    def synchronize(self):
        pass

    def __enter__(self):
        self._prev.append(_state.current)
        _state.current = self.id
        return self

    def __exit__(self, *exc):
        _state.current = self._prev.pop()

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return self.id

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


def _get_device_properties(i):
    return _state.props[_check_index(int(i))].as_dict()


def _mem_get_info():
    total = _state.props[_state.current].total_memory
    return total // 2, total


runtime = types.SimpleNamespace(
    is_hip=False,
    getDeviceCount=lambda: len(_state.props),
    getDeviceProperties=_get_device_properties,
    getDevice=lambda: _state.current,
    setDevice=lambda i: setattr(_state, "current", _check_index(int(i))),
    deviceSynchronize=lambda: None,
    runtimeGetVersion=lambda: 13000,
    driverGetVersion=lambda: 13000,
    memGetInfo=_mem_get_info,
    CUDARuntimeError=CUDARuntimeError,
)


# ---- streams and events: work runs when launched, so they only keep time ----
class Stream:
    """A stream: launches run synchronously on the CPU, so it only orders time."""

    def __init__(self, null=False, non_blocking=False, ptr=None):
        self.ptr = 0 if null else (ptr if ptr is not None else id(self))
        self.device_id = _state.current

    def synchronize(self):
        pass

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        pass

    def use(self):
        _streams[-1] = self
        return self

    def __enter__(self):
        _streams.append(self)
        return self

    def __exit__(self, *exc):
        _streams.pop()

    def __eq__(self, other):
        return isinstance(other, Stream) and other.ptr == self.ptr

    def __hash__(self):
        return hash(self.ptr)


Stream.null = Stream(null=True)
_streams = [Stream.null]


def ExternalStream(ptr, device_id=-1):  # noqa: N802 - CuPy's name
    return Stream(ptr=ptr)


def get_current_stream(device_id=None):
    return _streams[-1]


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._t = None

    def record(self, stream=None):
        self._t = time.perf_counter()

    def synchronize(self):
        pass

    def query(self):
        return True

    @property
    def done(self):
        return True


def get_elapsed_time(start, end):
    """Milliseconds between two recorded events (host time: launches are synchronous)."""
    if start._t is None or end._t is None:
        raise CUDARuntimeError("cudaErrorInvalidResourceHandle: event not recorded")
    return (end._t - start._t) * 1000.0


def is_available():
    return True
