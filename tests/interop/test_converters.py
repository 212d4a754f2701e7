"""The framework converters: the seed's section 7.4 snippet as written, round
trips with aliasing checked by mutation (torch, jax, numpy; cupy on a GPU), and
the errors for missing frameworks and wrong inputs."""
import sys

import numpy as np
import pytest

import tessera as ts
from tessera import interop
from tessera.errors import DeviceError, DTypeError

pytestmark = pytest.mark.cpu_only("host-memory converters (zero-copy checked through .ctypes); "
                                  "test_cupy_converters_alias covers CUDA")

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")


def test_seed_snippet_7_4_runs_as_written():
    import torch, jax.numpy as jnp  # noqa: E401
    from tessera import interop

    # Convert Torch tensor
    tx = interop.from_torch(torch.randn(4, 4))

    # Convert JAX tensor
    tj = interop.from_jax(jnp.ones((8, 8)))

    # Back out to PyTorch
    px = interop.to_torch(tx)
    assert isinstance(tx, ts.Tensor) and tx.shape == (4, 4)
    assert tj.shape == (8, 8) and tj.tolist() == np.ones((8, 8)).tolist()
    assert isinstance(px, torch.Tensor) and px.data_ptr() == tx.data.ctypes.data


@pytest.mark.parametrize("dtype", [d.name for d in ts.dtypes.ALL_DTYPES])
def test_torch_converters_alias(dtype):
    td = {"bool": torch.bool, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
          "fp64": torch.float64, "fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2,
          "complex64": torch.complex64, "complex128": torch.complex128}.get(dtype, getattr(torch, dtype, None))
    t = torch.zeros(3, 4, dtype=td)
    x = interop.from_torch(t)
    assert x.dtype.name == dtype and x.shape == (3, 4)
    t[1, 1] = 1
    assert x.numpy()[1, 1] == 1
    back = interop.to_torch(x[:, 1:3])  # strided view back out
    back[2, 0] = 1
    assert t[2, 1].item() == 1
    assert back.data_ptr() == t[:, 1:3].data_ptr()


def test_torch_special_cases():
    t = torch.arange(4.0, requires_grad=True)
    x = interop.from_torch(t)              # detached, not an error
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0] and not x.requires_grad
    c = torch.tensor([1 + 2j]).conj()      # lazy conjugate bit is materialized
    assert interop.from_torch(c).tolist() == [1 - 2j]
    y = interop.from_torch(torch.ones(2), copy=True)
    assert y.tolist() == [1.0, 1.0]
    z = interop.to_torch(ts.asarray([1.0, 2.0]), copy=True)
    assert z.tolist() == [1.0, 2.0]
    with pytest.raises(DTypeError, match=r"\[from_torch\] expected a torch.Tensor, got ndarray"):
        interop.from_torch(np.zeros(2))
    with pytest.raises(DTypeError, match=r"\[to_torch\] expected a tessera.Tensor"):
        interop.to_torch(np.zeros(2))


def _aligned(n, dtype=np.float32):
    """A tessera tensor over 64-byte aligned memory (XLA's condition for zero-copy)."""
    raw = np.zeros(n * np.dtype(dtype).itemsize + 64, np.uint8)
    off = (-raw.ctypes.data) % 64
    return interop.from_numpy(raw[off:off + n * np.dtype(dtype).itemsize].view(dtype))


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "bool", "int32", "int8", "fp16", "fp8_e4m3"])
def test_jax_roundtrip_and_alias(dtype):
    d = ts.dtypes.get_dtype(dtype)
    x = _aligned(8, d.np_storage)
    j = interop.to_jax(x, copy=False)
    assert str(j.dtype) in (d.np_storage.name, "bool")
    x[3] = True if dtype == "bool" else 2        # write through tessera ...
    assert bool(j[3]) if dtype == "bool" else float(j[3]) == 2.0   # ... read through JAX
    y = interop.from_jax(j)
    assert y.dtype is d and y.data.ctypes.data == j.unsafe_buffer_pointer()
    z = interop.from_jax(jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3))
    assert z.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    with pytest.raises(DTypeError, match=r"\[from_jax\] expected a jax.Array"):
        interop.from_jax(np.zeros(2))


def test_numpy_converters_alias():
    a = np.arange(6.0).reshape(2, 3)
    x = interop.from_numpy(a)
    a[0, 0] = 7.0
    assert x.tolist()[0][0] == 7.0
    b = interop.to_numpy(x)
    b[1, 2] = 9.0
    assert x.tolist()[1][2] == 9.0
    bf = interop.to_numpy(ts.asarray([1.5], dtype="bf16"))
    assert str(bf.dtype) == "bfloat16"
    assert not np.shares_memory(interop.to_numpy(x, copy=True), a)
    with pytest.raises(DTypeError, match=r"\[from_numpy\] expected a numpy.ndarray, got list"):
        interop.from_numpy([1, 2])


@pytest.mark.parametrize("module,fn,install", [
    ("torch", lambda: interop.from_torch(None), "pip install torch"),
    ("torch", lambda: interop.to_torch(ts.asarray([1.0])), "pip install torch"),
    ("torch", lambda: interop.torch_function(ts.sin), "pip install torch"),
    ("torch", lambda: interop.from_torch_function(lambda t: t), "pip install torch"),
    ("jax", lambda: interop.from_jax(None), "pip install jax"),
    ("jax", lambda: interop.to_jax(ts.asarray([1.0])), "pip install jax"),
    ("cupy", lambda: interop.from_cupy(None), "pip install cupy"),
    ("cupy", lambda: interop.to_cupy(ts.asarray([1.0])), "pip install cupy"),
])
def test_missing_framework_says_what_to_install(monkeypatch, module, fn, install):
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.setitem(sys.modules, name, None)  # `import module` now fails
    monkeypatch.setitem(sys.modules, module, None)
    if module == "cupy":  # nor a simulated CuPy (TESSERA_CUDA_SIM) handed to the backend
        from tessera.backend import cupy_source
        monkeypatch.delenv("TESSERA_CUDA_SIM", raising=False)
        monkeypatch.setattr(cupy_source, "_modules", None)
    with pytest.raises(interop.MissingDependencyError, match=install) as e:
        fn()
    assert str(e.value).startswith("[") and isinstance(e.value, ImportError)


def test_cupy_converters_without_gpu():
    if ts.cuda_is_available():
        pytest.skip("checks the CPU-only behaviour")
    try:
        from tessera.backend.cupy_source import cupy
        cupy()
    except ImportError:
        with pytest.raises(interop.MissingDependencyError, match="CuPy"):
            interop.to_cupy(ts.asarray([1.0]))
        return
    with pytest.raises(DeviceError, match=r"\[to_cupy\] the tensor is on cpu"):
        interop.to_cupy(ts.asarray([1.0]))


@pytest.mark.gpu
def test_cupy_converters_alias():
    from tessera.backend.cupy_source import cupy as _cupy
    cupy = _cupy()
    c = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
    x = interop.from_cupy(c)
    c[0, 0] = 5
    assert x.tolist()[0][0] == 5.0
    back = interop.to_cupy(x)
    back[1, 1] = 8
    assert float(c[1, 1]) == 8.0
    h = x.astype("bf16")
    if h.device.backend.storage_dtype(h.dtype) == h.dtype.np_storage:  # CuPy 14: native bfloat16
        hb = interop.to_cupy(h)
        assert hb.dtype == h.dtype.np_storage and hb.data.ptr == h.data.data.ptr
    else:
        with pytest.raises(DTypeError, match=r"\[to_cupy\] CuPy has no bf16"):
            interop.to_cupy(h)
    with pytest.raises(DTypeError, match=r"\[to_cupy\] CuPy has no fp8_e4m3"):
        interop.to_cupy(x.astype("fp8_e4m3"))
    if not torch.cuda.is_available():
        return  # the torch half needs a CUDA torch
    t = torch.zeros(4, device="cuda", dtype=torch.bfloat16)
    y = interop.from_torch(t)
    t[1] = 3
    assert y.cpu().tolist()[1] == 3.0
    assert interop.to_torch(y).data_ptr() == t.data_ptr()
