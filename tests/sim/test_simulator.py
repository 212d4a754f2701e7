"""The simulated CuPy itself (tessera.sim): it must fail where CuPy and a GPU fail,
or it hides the bugs it exists to catch. Kernels here are small CUDA sources
compiled for the CPU with the emulator, launched as a launcher would."""
import numpy as np
import pytest

from tessera.sim import cuda, cupy_api as cp, cupyx_api
from tessera.sim.rawmodule import SimLaunchError

pytestmark = pytest.mark.cpu_only("tests the simulated CuPy on the host, whatever the default device")

SRC = r'''
extern "C" __global__ void scale(const float* x, float* y, long long n, float a) {
  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i];
}
extern "C" __global__ void overrun(float* y, long long n) {
  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i <= n) y[i] = 1.0f;   // one past the end
}
extern "C" __global__ void warp_sum(const float* x, float* out) {
  float v = x[threadIdx.x];
  for (int m = warpSize / 2; m > 0; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m);
  if (threadIdx.x % warpSize == 0) out[threadIdx.x / warpSize] = v;
}
extern "C" __global__ void block_sum(const float* x, float* out, int n) {
  __shared__ float s[1024];
  s[threadIdx.x] = threadIdx.x < n ? x[threadIdx.x] : 0.0f;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k /= 2) {
    if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = s[0];
}
extern "C" __global__ void divergent(float* y) {
  if (threadIdx.x < 16) __syncthreads();
  else __syncwarp();
  y[threadIdx.x] = 1.0f;
}
extern "C" __global__ void dyn(float* y) {
  extern __shared__ float buf[];
  y[threadIdx.x] = 0.0f;
}
'''


@pytest.fixture(autouse=True)
def _restore():
    before = cuda._state.props[0].platform, len(cuda._state.props)
    yield
    cuda.configure(platform=before[0], devices=before[1])


@pytest.fixture(scope="module")
def mod():
    return cp.RawModule(code=SRC)


def test_refuses_implicit_host_conversion_and_host_pointers():
    x = cp.arange(6, dtype=np.float32)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(x)
    with pytest.raises(AttributeError, match="ctypes"):
        x.ctypes
    with pytest.raises(TypeError, match="length-1"):
        float(x)
    assert float(x[2]) == 2.0
    with pytest.raises(TypeError, match="Unsupported type"):
        x + np.ones(6, np.float32)
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.add(x, np.ones(6, np.float32))


def test_cupy14_dtype_rules():
    import ml_dtypes
    assert cp.empty(3, ml_dtypes.bfloat16).dtype == np.dtype(ml_dtypes.bfloat16)
    for fp8 in (ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2):
        with pytest.raises(ValueError, match="Unsupported dtype"):
            cp.empty(3, fp8)
        with pytest.raises(ValueError, match="Unsupported dtype"):
            cp.zeros(3, np.float32).astype(fp8)


def test_cupy_array_semantics_that_differ_from_numpy():
    assert cp.zeros((0, 5), np.float32).strides == (0, 0)      # TRIAGE A3's trigger
    assert cp.ascontiguousarray(cp.asarray(3.0)).shape == (1,)  # TRIAGE A13's trigger
    r = cp.asarray([1.0, 2.0]).sum()
    assert isinstance(r, cp.ndarray) and r.shape == ()          # 0-d arrays, never NumPy scalars
    b = cp.broadcast_to(cp.zeros(3), (2, 3))
    b[0, 0] = 1.0                                               # CuPy's broadcast views are writable
    assert np.exp(cp.asarray([0.0])).__class__ is cp.ndarray    # __array_ufunc__ keeps it on the device
    assert cp.asarray([1]).__dlpack_device__() == (2, 0)


def test_fresh_memory_reads_as_nan_and_minus_one():
    assert np.isnan(cp.empty(5, np.float32).get()).all()
    assert (cp.empty(5, np.int32).get() == -1).all()
    assert (cp.zeros(5, np.int32).get() == 0).all()


def test_kernel_runs_with_the_arguments_as_packed(mod):
    x = cp.arange(1000, dtype=np.float32)
    y = cp.empty(1000, np.float32)
    mod.get_function("scale")((4,), (256,), (x, y, np.int64(1000), np.float32(2.5)))
    np.testing.assert_array_equal(y.get(), 2.5 * np.arange(1000, dtype=np.float32))


@pytest.mark.parametrize("args, msg", [
    (lambda x, y: (x, y, np.int32(8), np.float32(1)), "argument 2 is a signed integer of 4 bytes"),
    (lambda x, y: (x, y, 8, 1.0), "argument 3 is a float of 8 bytes"),   # Python float: float64
    (lambda x, y: (x, y, np.int64(8)), "takes 4 arguments, the launch passed 3"),
    (lambda x, y: (np.int64(8), y, np.int64(8), np.float32(1)), "argument 0 is a signed integer"),
])
def test_launcher_kernel_mismatch_is_an_error(mod, args, msg):
    x, y = cp.zeros(8, np.float32), cp.zeros(8, np.float32)
    with pytest.raises(SimLaunchError, match=msg):
        mod.get_function("scale")((1,), (8,), args(x, y))


def test_host_array_argument_is_refused(mod):
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        mod.get_function("scale")((1,), (8,), (np.zeros(8, np.float32), cp.zeros(8, np.float32),
                                              np.int64(8), np.float32(1)))


def test_out_of_bounds_write_names_kernel_and_argument(mod):
    y = cp.zeros(64, np.float32)
    with pytest.raises(SimLaunchError, match=r"overrun .* wrote out of bounds of argument 0 \(shape \(64,\)"):
        mod.get_function("overrun")((1,), (128,), (y, np.int64(64)))


@pytest.mark.parametrize("grid, block, smem, msg", [
    ((1,), (2048,), 0, "2048 threads per block"),
    ((0,), (32,), 0, "at least 1"),
    ((1, 70000), (32,), 0, "grid exceeds"),
    ((1,), (32,), 64 * 1024, "opt-in attribute"),
    ((1,), (32,), 300 * 1024, "over the device's limit"),
])
def test_launch_limits(mod, grid, block, smem, msg):
    with pytest.raises(SimLaunchError, match=msg):
        mod.get_function("dyn")(grid, block, (cp.zeros(2048, np.float32),), shared_mem=smem)


def test_dynamic_shared_memory_opt_in(mod):
    fn = cp.RawModule(code=SRC).get_function("dyn")
    fn.max_dynamic_shared_size_bytes = 100 * 1024
    fn((1,), (32,), (cp.zeros(32, np.float32),), shared_mem=100 * 1024)


@pytest.mark.parametrize("platform, warp", [("cuda", 32), ("hip", 64)])
def test_warp_shuffles_follow_the_device_warp_size(platform, warp):
    cuda.configure(platform=platform)
    x = cp.asarray(np.arange(128, dtype=np.float32))
    out = cp.zeros(128 // warp, np.float32)
    cp.RawModule(code=SRC).get_function("warp_sum")((1,), (128,), (x, out))
    np.testing.assert_array_equal(out.get(), np.arange(128, dtype=np.float32).reshape(-1, warp).sum(1))


def test_block_barriers(mod):
    x = cp.asarray(np.arange(1000, dtype=np.float32))
    out = cp.zeros(1, np.float32)
    mod.get_function("block_sum")((1,), (1024,), (x, out, np.int32(1000)))
    assert out.get()[0] == np.arange(1000).sum()


def test_divergent_barrier_is_reported_not_hung(mod):
    with pytest.raises(SimLaunchError, match="deadlocked"):
        mod.get_function("divergent")((1,), (32,), (cp.zeros(32, np.float32),))


def test_pointer_of_another_device_is_refused(mod):
    cuda.configure(devices=2)
    with cp.cuda.Device(1):
        y = cp.zeros(8, np.float32)
    x = cp.zeros(8, np.float32)
    with pytest.raises(SimLaunchError, match="lives on device 1"):
        mod.get_function("scale")((1,), (8,), (x, y, np.int64(8), np.float32(1)))


def test_cubins_are_refused_as_a_driver_would():
    with pytest.raises(cuda.CUDADriverError, match="NO_BINARY_FOR_GPU"):
        cp.RawModule(path="/nonexistent.cubin")


def test_cupyx_scatter_add_and_device_properties():
    a = cp.zeros(4, np.float32)
    cupyx_api.scatter_add(a, cp.asarray([0, 0, 3]), cp.asarray([1.0, 2.0, 5.0], dtype=np.float32))
    assert a.get().tolist() == [3.0, 0.0, 0.0, 5.0]
    props = cuda.runtime.getDeviceProperties(0)
    assert props["warpSize"] == 32 and props["sharedMemPerBlockOptin"] == 227 * 1024
    assert cuda.configure(platform="hip").warp_size == 64 and cuda.runtime.is_hip


def test_switching_cupy_drops_what_was_cached_for_the_old_one():
    """cupy_source.use hands the backend another CuPy: device facts, storage tables,
    compiled kernels and backends built on the old one must not be reused."""
    import tessera as ts
    from tessera import sim
    from tessera.backend import cupy_source
    from tessera.kernels.launchers import _runtime as rt
    prev = cupy_source.use(*sim.modules("cuda"))
    try:
        assert rt.device_facts()["warp_size"] == 32 and rt.device_facts()["emulated"]
        x = ts.asarray(np.arange(8, dtype=np.float32), device="cuda")
        assert float(ts.sum(x * 2)) == 56.0
        old = x.device.backend
        cupy_source.use(*sim.modules("hip"))
        assert rt.device_facts()["warp_size"] == 64
        y = ts.asarray(np.arange(8, dtype=np.float32), device="cuda")
        assert y.device.backend is not old
        assert float(ts.sum(y * 2)) == 56.0   # the reduction kernel rebuilt for 64-wide warps
    finally:
        cuda.configure(platform="cuda")
        cupy_source.use(*prev) if prev else cupy_source.use(None)
