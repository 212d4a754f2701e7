"""tessera's DLPack protocol: export/import over every dtype, strides, zero-size
tensors, copy/max_version/dl_device/stream semantics, capsule lifetime, and the
GPU stream ordering (checked against a fake CuPy that records the calls)."""
import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera.errors import DeviceError, DTypeError
from tessera.interop import DLPackError, _capsule as C
from tessera.interop.dlpack import DLDeviceType, order_streams

pytestmark = pytest.mark.cpu_only("DLPack of host memory: kDLCPU capsules, .ctypes addresses, the "
                                  "CPU stream rules; test_gpu_roundtrip_torch_and_cupy covers CUDA")

torch = pytest.importorskip("torch")

ALL = [d.name for d in ts.dtypes.ALL_DTYPES]
NARROW = {"bf16": ml_dtypes.bfloat16, "fp8_e4m3": ml_dtypes.float8_e4m3fn,
          "fp8_e5m2": ml_dtypes.float8_e5m2}


def sample(dtype, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-3, 3, size=shape)
    d = ts.dtypes.get_dtype(dtype)
    if d.kind == "b":
        a = a > 0
    elif d.kind in "iu":
        a = np.abs(a * 10) if d.kind == "u" else a * 10
    return ts.asarray(a, dtype=dtype)


def host(t):
    return t.numpy().astype(np.float64) if t.dtype.kind == "f" else t.numpy()


@pytest.mark.parametrize("dtype", ALL)
def test_torch_roundtrip_and_mutation_every_dtype(dtype):
    x = sample(dtype)
    t = torch.from_dlpack(x)
    assert tuple(t.shape) == x.shape
    assert t.data_ptr() == x.data.ctypes.data  # zero-copy
    np.testing.assert_array_equal(t.view(torch.uint8).numpy().tobytes(), x.data.tobytes())
    one = True if dtype == "bool" else 1
    t[1, 2] = one if dtype == "bool" else 2   # write through torch ...
    assert host(x)[1, 2] == (True if dtype == "bool" else 2)  # ... read through tessera
    x[0, 0] = False if dtype == "bool" else 3  # write through tessera ...
    assert t[0, 0].item() == (False if dtype == "bool" else 3)  # ... read through torch
    back = ts.from_dlpack(t)
    assert back.dtype is x.dtype and back.data.ctypes.data == x.data.ctypes.data


@pytest.mark.parametrize("dtype", ["bf16", "fp32", "bool", "int8", "complex64", "fp8_e5m2"])
def test_non_contiguous_and_zero_size(dtype):
    base = sample(dtype, (4, 6))
    v = base[1:, ::2]          # strided view of tessera memory
    t = torch.from_dlpack(v)
    assert t.stride() == tuple(s // v.itemsize for s in v.data.strides)
    assert t.data_ptr() == v.data.ctypes.data
    np.testing.assert_array_equal(t.view(torch.uint8).numpy() if False else
                                  host(ts.from_dlpack(t)), host(v))
    t[0, 1] = 0
    assert host(base)[1, 2] == 0
    tt = torch.zeros(5, 4, dtype=t.dtype).t()   # torch-side transposed view
    y = ts.from_dlpack(tt)
    assert y.strides == (1, 4)
    y[2, 3] = 1
    assert tt[2, 3].item() == 1
    for shape in [(0,), (3, 0), (0, 2, 5)]:
        z = ts.zeros(shape, dtype=dtype)
        assert tuple(torch.from_dlpack(z).shape) == shape
        assert ts.from_dlpack(torch.zeros(shape, dtype=t.dtype)).shape == shape


def test_zero_dim():
    x = ts.asarray(2.5)
    t = torch.from_dlpack(x)
    assert t.shape == () and t.item() == 2.5
    t.fill_(4.0)
    assert x.item() == 4.0


def test_negative_strides_are_copied_not_exported():
    # PyTorch aborts the process on negative DLPack strides: tessera copies instead
    x = ts.asarray(np.arange(6.0))[::-1]
    t = torch.from_dlpack(x)
    assert t.tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    with pytest.raises(DLPackError, match=r"\[__dlpack__\].*negative strides.*copy=False"):
        x.__dlpack__(max_version=(1, 0), copy=False)
    # importing negative strides (NumPy produces them) keeps the view
    a = np.arange(5.0)[::-1]
    y = ts.from_dlpack(a)
    a[::-1][0] = 9.0
    assert y.tolist()[-1] == 9.0


def test_capsule_names_versions_and_flags():
    x = ts.asarray([1.0, 2.0], dtype="bf16")
    assert "dltensor" in repr(x.__dlpack__()) and "versioned" not in repr(x.__dlpack__())
    cap = x.__dlpack__(max_version=(1, 1))
    p = C.peek(cap)
    assert p.versioned and (p.code, p.bits, p.lanes) == (C.KDL_BFLOAT, 16, 1)
    assert p.device_type == C.KDL_CPU and p.flags == 0
    pc = C.peek(x.__dlpack__(max_version=(1, 0), copy=True))
    assert pc.flags & C.FLAG_IS_COPIED
    b = C.peek(ts.asarray([True]).__dlpack__(max_version=(1, 0)))
    assert (b.code, b.bits) == (C.KDL_BOOL, 8)
    assert x.__dlpack_device__() == (DLDeviceType.kDLCPU, 0)


def test_copy_semantics():
    x = ts.asarray([1.0, 2.0, 3.0])
    t = torch.from_dlpack(x, copy=True)
    t[0] = 7.0
    assert x.tolist()[0] == 1.0
    y = ts.from_dlpack(t, copy=True)
    t[1] = 8.0
    assert y.tolist()[1] == 2.0
    z = ts.from_dlpack(t, copy=False)
    t[2] = 9.0
    assert z.tolist()[2] == 9.0


def test_read_only_buffers():
    a = np.arange(3.0)
    a.flags.writeable = False
    x = ts.from_numpy(a) if hasattr(ts, "from_numpy") else ts.interop.from_numpy(a)
    p = C.peek(x.__dlpack__(max_version=(1, 0)))
    assert p.flags & C.FLAG_READ_ONLY
    # legacy capsules cannot say read-only: copy (or refuse with copy=False)
    assert torch.from_dlpack(x.__dlpack__()).tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(DLPackError, match="read-only.*copy=False"):
        x.__dlpack__(copy=False)


def test_device_and_stream_arguments_on_cpu():
    x = ts.asarray([1.0])
    with pytest.raises(DLPackError, match=r"\[__dlpack__\] stream must be None.*CPU, got 1"):
        x.__dlpack__(stream=1)
    with pytest.raises(DLPackError, match=r"cannot export a tensor on cpu to DLPack device \(2, 0\)"):
        x.__dlpack__(dl_device=(2, 0))
    assert C.peek(x.__dlpack__(max_version=(1, 0), dl_device=(1, 0))).device_type == 1


def test_import_errors():
    with pytest.raises(DTypeError, match=r"\[from_dlpack\] DLPack dtype uint16 .*no tessera"):
        ts.from_dlpack(np.zeros(3, np.uint16))
    with pytest.raises(DTypeError, match=r"\[from_dlpack\] list is not a DLPack producer"):
        ts.from_dlpack([1, 2])
    cap = ts.asarray([1.0]).__dlpack__()
    torch.from_dlpack(cap)

    class Spent:
        def __dlpack__(self, **kw):
            return cap

        def __dlpack_device__(self):
            return (1, 0)
    with pytest.raises(BufferError, match="consumed once"):
        ts.from_dlpack(Spent())
    if ts.cuda_is_available():
        pytest.skip("needs a machine without a GPU")
    with pytest.raises(DeviceError):
        ts.from_dlpack(np.zeros(2), device="cuda")


def test_old_producer_without_keywords():
    class Old:  # a producer from before the 2023.12 keywords
        def __init__(self, a):
            self.a = a

        def __dlpack__(self, stream=None):
            return self.a.__dlpack__()

        def __dlpack_device__(self):
            return self.a.__dlpack_device__()
    a = np.arange(4.0)
    y = ts.from_dlpack(Old(a))
    a[0] = 5.0
    assert y.tolist()[0] == 5.0
    z = ts.from_dlpack(Old(a), copy=True)  # copy not passed to the producer: tessera copies
    a[1] = 6.0
    assert z.tolist()[1] == 1.0


def test_asarray_takes_dlpack_producers():
    t = torch.arange(3, dtype=torch.int32)
    x = ts.asarray(t)
    t[0] = 5
    assert x.dtype is ts.int32 and x.tolist() == [5, 1, 2]


def test_lazy_tensor_is_realized_on_export():
    a = ts.asarray(np.ones(40000, np.float32))
    y = (a * 2 + 1)
    t = torch.from_dlpack(y)
    assert float(t[0]) == 3.0


@pytest.mark.parametrize("dtype", ["bf16", "fp32", "bool", "fp8_e4m3", "int64"])
def test_own_capsule_builder(dtype):
    """make_capsule is what GPU tensors export through; check it on host memory."""
    x = sample(dtype, (3, 5))[:, 1::2]
    buf = x.data
    code, bits = ts.interop.dlpack._CODES[x.dtype]
    for versioned in (False, True):
        cap = C.make_capsule(buf, buf.ctypes.data, x.shape, x.strides, code, bits,
                             C.KDL_CPU, 0, versioned)
        addr = C.peek(cap).managed_addr
        t = torch.from_dlpack(cap)
        assert t.data_ptr() == buf.ctypes.data and t.stride() == x.strides
        y = ts.from_dlpack(t)
        assert y.data.ctypes.data == buf.ctypes.data and y.strides == x.strides
        np.testing.assert_array_equal(host(y), host(x))
        assert addr in C._LIVE
        del t, y, cap
        assert addr not in C._LIVE  # the consumer's deleter released it
    cap = C.make_capsule(buf, buf.ctypes.data, x.shape, x.strides, code, bits, C.KDL_CPU, 0, True)
    addr = C.peek(cap).managed_addr
    del cap
    assert addr not in C._LIVE  # an unconsumed capsule releases itself


# -- GPU stream ordering, on a fake CuPy that records what would run ---------
class _FakeStream:
    def __init__(self, ptr, done=True):
        self.ptr, self.done, self.waited = ptr, done, []

    def wait_event(self, ev):
        self.waited.append(ev)


class _FakeCupy:
    def __init__(self, current, hip=False):
        cu = self
        self.log = []
        self.external = {}

        class Event:
            def __init__(self, block=False, disable_timing=True):
                self.recorded = None

            def record(self, stream):
                self.recorded = stream
                cu.log.append(("record", stream.ptr))

        def external(ptr):
            s = cu.external.setdefault(ptr, _FakeStream(ptr))
            return s

        def sync_device():
            cu.log.append("device-sync")

        self.cuda = type("cuda", (), {})()
        self.cuda.runtime = type("rt", (), {"is_hip": hip, "deviceSynchronize": sync_device})()
        self.cuda.get_current_stream = lambda: current
        self.cuda.Event = Event
        self.cuda.ExternalStream = external


def test_order_streams_records_an_event_and_never_syncs_the_device():
    prod = _FakeStream(0xABC)
    cp = _FakeCupy(prod)
    ev = order_streams(cp, 0x123)
    assert ev.recorded is prod
    assert cp.external[0x123].waited == [ev]
    assert "device-sync" not in cp.log
    # None means the legacy default stream (1) on CUDA
    order_streams(cp, None)
    assert cp.external[1].waited


def test_order_streams_same_stream_and_rules():
    assert order_streams(_FakeCupy(_FakeStream(0x55)), 0x55) is None
    assert order_streams(_FakeCupy(_FakeStream(0)), 1) is None      # legacy == legacy
    assert order_streams(_FakeCupy(_FakeStream(0), hip=True), 0) is None
    with pytest.raises(DLPackError, match="stream=0 is ambiguous on CUDA"):
        order_streams(_FakeCupy(_FakeStream(5)), 0)
    with pytest.raises(DLPackError, match="stream must be None, -1 or a stream handle"):
        order_streams(_FakeCupy(_FakeStream(5)), "s")


def test_stream_minus_one_refused_while_producer_still_writes():
    assert order_streams(_FakeCupy(_FakeStream(7, done=True)), -1) is None
    with pytest.raises(DLPackError, match=r"\[__dlpack__\] stream=-1 .*still has queued work"):
        order_streams(_FakeCupy(_FakeStream(7, done=False)), -1)


@pytest.mark.gpu
def test_gpu_roundtrip_torch_and_cupy():
    if not torch.cuda.is_available():
        pytest.skip("this torch has no CUDA")
    from tessera.backend.cupy_source import cupy as _cupy
    cupy = _cupy()
    for dtype in ["fp32", "bf16", "bool", "int8"]:
        x = sample(dtype).to("cuda")
        t = torch.from_dlpack(x)
        assert t.data_ptr() == x.data.data.ptr
        t[0, 0] = 1
        assert float(host(x.cpu())[0, 0]) == 1
        y = ts.from_dlpack(t)
        assert y.device.type == "cuda" and y.dtype is x.dtype
    c = cupy.arange(6, dtype=cupy.float32)
    z = ts.from_dlpack(c)
    c[0] = 4
    assert z.tolist()[0] == 4.0
    assert ts.from_dlpack(sample("fp32").to("cuda"), device="cpu").device.type == "cpu"
