"""Devices: parsing, the default device (set_default_device, TESSERA_DEVICE), and
ops refusing to mix devices. A second device is faked where no GPU exists: a
Device object the ops see but whose backend is never reached."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tessera as ts
from tessera import device as tdev
from tessera.tensor import _new

# Parsing, the default device and the no-GPU errors are about the CPU process state; the
# device-mixing tests run on each device.
CPU_ONLY = pytest.mark.cpu_only("device parsing, the default device and the no-GPU errors")
GPU = __import__("tessera").cuda_is_available()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@CPU_ONLY
def test_cpu_device():
    d = ts.get_device("cpu")
    assert d is ts.get_device(" CPU ") and d is tdev.CPU
    assert d.type == "cpu" and str(d) == "cpu" and repr(d) == "device('cpu')"
    assert d == "cpu" and d != "cuda:7" and d != "nonsense"
    x = ts.zeros((2,), device="cpu")
    assert x.device is d
    assert ts.asarray([1.0], device=d).device is d


@CPU_ONLY
@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "cpu:0:1", ""])
def test_unknown_device_raises(spec):
    with pytest.raises(ts.DeviceError, match="accepted"):
        ts.get_device(spec)


@CPU_ONLY
def test_device_from_object_with_type():
    class FakeTorchDevice:
        type, index = "cpu", None
    assert ts.get_device(FakeTorchDevice()) is tdev.CPU
    with pytest.raises(ts.DeviceError):
        ts.get_device(3.5)


@CPU_ONLY
@pytest.mark.skipif(GPU, reason="checks the error raised when no GPU is present")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "GPU", "hip", "cuda:3"])
def test_cuda_without_gpu_raises(spec):
    with pytest.raises(ts.DeviceError, match="not available") as e:
        ts.zeros((2,), device=spec)
    assert isinstance(e.value, ValueError)
    with pytest.raises(ts.DeviceError):
        ts.asarray([1.0, 2.0], device=spec)
    assert not ts.cuda_is_available()


@CPU_ONLY
@pytest.mark.skipif(GPU, reason="checks the error raised when no GPU is present")
def test_to_cuda_without_gpu_raises():
    x = ts.ones((3,))
    with pytest.raises(ts.DeviceError):
        x.to("cuda")
    with pytest.raises(ts.DeviceError):
        x.cuda()


@pytest.mark.gpu
def test_cuda_device_roundtrip():
    x = ts.asarray([1.0, 2.0], device="cuda")
    assert x.device.type == "cuda"
    np.testing.assert_array_equal(x.to("cpu").numpy(), [1.0, 2.0])


@CPU_ONLY
def test_set_default_device():
    old = tdev._default
    try:
        assert ts.set_default_device("cpu") is tdev.CPU
        assert ts.default_device() is tdev.CPU
        assert ts.zeros((1,)).device is tdev.CPU
        assert ts.get_device(None) is tdev.CPU
        if not GPU:
            with pytest.raises(ts.DeviceError):
                ts.set_default_device("cuda")
            assert ts.default_device() is tdev.CPU  # a failed set keeps the old default
    finally:
        tdev._default = old


def _run(code, **env):
    e = dict(os.environ)
    e.pop("TESSERA_DEVICE", None)
    e.update(env)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e,
                          cwd=ROOT, timeout=120)


@CPU_ONLY
def test_tessera_device_env_var():
    r = _run("import tessera as ts; print(ts.default_device(), ts.zeros((1,)).device)",
             TESSERA_DEVICE="cpu")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["cpu", "cpu"]


@CPU_ONLY
@pytest.mark.skipif(GPU, reason="checks that an unusable TESSERA_DEVICE is reported")
def test_tessera_device_env_var_cuda_without_gpu():
    r = _run("import tessera as ts\ntry:\n    ts.zeros((1,))\nexcept ts.DeviceError as e:\n"
             "    print('DeviceError', e)", TESSERA_DEVICE="cuda")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("DeviceError") and "cuda:0" in r.stdout


@CPU_ONLY
def test_tessera_device_env_var_bad_name():
    r = _run("import tessera as ts\ntry:\n    ts.zeros((1,))\nexcept ts.DeviceError as e:\n"
             "    print('DeviceError', e)", TESSERA_DEVICE="tpu")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("DeviceError") and "'tpu'" in r.stdout


# ---- mixing devices ---------------------------------------------------------
@pytest.fixture
def fake():
    """A tensor that claims to live on a second device (no GPU needed: the ops
    must refuse before touching its backend)."""
    dev = tdev.Device("fake", 1)
    return _new(np.ones((3,), np.float32), (3,), ts.fp32, dev)


@pytest.mark.parametrize("fn", [
    lambda a, b: a + b, lambda a, b: b * a, lambda a, b: ts.maximum(a, b),
    lambda a, b: ts.where(a > 0, a, b), lambda a, b: ts.matmul(a, b),
    lambda a, b: a @ b,
], ids=["add", "rmul", "maximum", "where", "matmul", "matmul_op"])
def test_mixing_devices_raises_naming_both(fn, fake, device):
    x = ts.ones((3,), device=device)
    with pytest.raises(ts.DeviceError) as e:
        fn(x, fake)
    msg = str(e.value)
    assert str(x.device) in msg and "fake:1" in msg, msg
    assert msg.startswith("[")


def test_index_tensor_on_other_device_raises(fake, device):
    x = ts.ones((3,), device=device)
    idx = _new(np.zeros((1,), np.int64), (1,), ts.int64, fake.device)
    with pytest.raises(ts.DeviceError, match="getitem"):
        x[idx]
    with pytest.raises(ts.DeviceError, match="setitem"):
        x[0:3] = fake


@pytest.mark.gpu
def test_mixing_cpu_and_cuda_raises():
    a = ts.ones((3,), device="cpu")
    b = ts.ones((3,), device="cuda")
    with pytest.raises(ts.DeviceError, match="cpu.*cuda:0|cuda:0.*cpu"):
        a + b
