"""Custom ops from CUDA/HIP source: registration checks, compile errors in the
user's lines, the source compile-checked through NVRTC (sm_80, sm_90) and hipcc
(gfx90a), CPU bodies and adjoints (through gradcheck), the seed's 7.1 example, and
GPU runs (marked gpu)."""
import importlib.util
import pathlib

import re

import numpy as np
import pytest

import tessera as ts
from tessera import op
from tessera.custom import CustomKernelError, Kernel, RegistrationError, registered, unregister
from tessera.kernels import loader

from helpers import assert_close

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

ROOT = pathlib.Path(__file__).resolve().parents[2]
NVRTC = loader._have_cuda_bindings()
HIPCC = loader.hipcc_path() is not None
need_nvrtc = pytest.mark.skipif(not NVRTC, reason="cuda-python NVRTC or CUDA headers not installed")
need_hipcc = pytest.mark.skipif(not HIPCC, reason="hipcc not installed")
HOST_COMPILE = pytest.mark.cpu_only("compile-checks the kernel source on the host; no tensors")

SCALE = """#include "compat.cuh"
// y = alpha * x, one thread per element
extern "C" __global__ void scale(const float* __restrict__ x, float* __restrict__ y,
                                 long long n, float alpha) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = alpha * x[i];
}
"""


@pytest.fixture(autouse=True)
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    before = set(registered())
    yield
    for n in set(registered()) - before:
        unregister(n)


def _example():
    spec = importlib.util.spec_from_file_location("custom_spectral_filter_example",
                                                  ROOT / "examples" / "custom_spectral_filter.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _scale_op(**kw):
    return op.custom("k_scale", source=SCALE, kernel="scale",
                     args=lambda out, x, alpha=2.0: (np.int64(out.size), np.float32(alpha)), **kw)


@pytest.mark.cpu_only("the error of a kernel-only op called on the CPU (TRIAGE B8)")
def test_kernel_op_without_cpu_body_is_a_clear_error():
    s = _scale_op(compile_check=False)
    with pytest.raises(ts.DeviceError, match=r"\[k_scale\] has no implementation for cpu: it has a kernel "
                                             r"for GPUs only"):
        s(ts.ones(4))


def test_kernel_op_cpu_body_adjoint_gradcheck():
    s = _scale_op(compile_check=False)

    @s
    def s_cpu(x, alpha=2.0):
        return x * alpha

    @s.adjoint
    def s_adj(g, x, alpha=2.0):
        return g * alpha
    assert s(ts.ones(3), alpha=3.0).tolist() == [3.0, 3.0, 3.0]
    assert op.gradcheck(s, ts.asarray([1.0, -2.0, 0.5]), alpha=3.0).ok


def test_gradcheck_finds_the_wrong_input():
    f = op.custom("k_mul", lambda a, b: a * b, adjoint=lambda g, a, b: (g * b, g * b))
    with pytest.raises(ts.GradError, match=r"\[gradcheck\] k_mul: the adjoint disagrees:\n  input 1 "):
        op.gradcheck(f, ts.asarray([1.0, 2.0]), ts.asarray([3.0, -1.0]))
    rep = op.gradcheck(f, ts.asarray([1.0, 2.0]), ts.asarray([3.0, -1.0]), raise_on_failure=False)
    assert not rep.ok and 0 not in [int(p.split()[1]) for p in rep.problems if p.startswith("input")]
    assert rep.inputs[0]["where"] is None and rep.inputs[1]["where"] is not None
    assert any(p.startswith("dot-product test") for p in rep.problems)


def test_gradcheck_flags_nonlinear_adjoint():
    f = op.custom("k_id", lambda a: a * 1.0, adjoint=lambda g, a: g + 0.0 * g * g)
    assert op.gradcheck(f, ts.asarray(np.linspace(-1, 1, 80))).ok  # large input: random directions
    g = op.custom("k_nl", lambda a: a * 1.0, adjoint=lambda g, a: g * ts.abs(g))
    with pytest.raises(ts.GradError, match="not linear in the cotangent"):
        op.gradcheck(g, ts.asarray([0.5, 1.0]))


def test_registration_errors_leave_nothing():
    with pytest.raises(RegistrationError, match=r"\[k_half\] a kernel from source needs both source= .* and kernel="):
        op.custom("k_half", source=SCALE)
    with pytest.raises(RegistrationError, match=r"\[k_noname\] the source defines no function named 'nope'"):
        op.custom("k_noname", source=SCALE, kernel="nope")
    with pytest.raises(RegistrationError, match=r"\[k_block\] block \(2048, 1, 1\) has more than 1024 threads"):
        op.custom("k_block", source=SCALE, kernel="scale", block=2048)
    with pytest.raises(RegistrationError, match=r"kernel= must be a kernel name"):
        op.custom("k_kind", kernel=42)
    assert not {"k_half", "k_noname", "k_block", "k_kind"} & set(registered())
    with pytest.raises(ValueError, match=r"\[op.kernel\] source must be CUDA/HIP text"):
        op.kernel("int main() {}", "main")


@HOST_COMPILE
@need_nvrtc
def test_compile_error_shows_user_lines_and_registers_nothing():
    bad = SCALE.replace("alpha * x[i]", "alpha * xs[i]")
    with pytest.raises(CustomKernelError) as ei:
        op.custom("k_bad", source=bad, kernel="scale")
    msg = str(ei.value)
    assert msg.startswith("[k_bad] kernel 'scale' failed to compile (nvrtc")
    # NVRTC's words, or the host compiler's where the simulated GPU compiled it
    assert re.search(r'k_bad\.cu\(6\): error: identifier "xs" is undefined|'
                     r"kernel\.cu:6:\d+: error: .xs. was not declared", msg), msg
    assert ">    6 |   if (i < n) y[i] = alpha * xs[i];" in msg and "     5 |" in msg
    assert "k_bad" not in registered()
    assert isinstance(ei.value, ts.TesseraError)


@HOST_COMPILE
@need_nvrtc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_sources_compile_nvrtc(arch):
    rep = Kernel(SCALE, "scale").check_nvrtc(arch)
    assert rep.kernels["scale"].spill_stores == 0
    ex = _example()
    for name in ("spectral_filter", "spectral_filter_adjoint"):
        r = Kernel(ex.SOURCE, name).check_nvrtc(arch)
        assert r.kernels[name].registers > 0 and not r.spilling()


@HOST_COMPILE
@need_hipcc
@pytest.mark.slow
def test_sources_compile_hipcc_scale():
    rep = Kernel(SCALE, "scale").check_hipcc("gfx90a")
    assert "scale" in rep.kernels


@HOST_COMPILE
@need_hipcc
def test_example_compiles_hipcc():
    ex = _example()
    k = Kernel(ex.SOURCE, "spectral_filter")
    rep = k.check_hipcc("gfx90a")
    assert "spectral_filter" in rep.kernels


@HOST_COMPILE
@need_hipcc
def test_hipcc_compile_error_names_user_line():
    with pytest.raises(CustomKernelError, match=r"(?s)hipcc.*>    6 \|"):
        k = Kernel(SCALE.replace("alpha * x[i]", "alpha * xs[i]"), "scale")
        k.op = "k_hbad"
        k.check_hipcc("gfx90a")


@pytest.mark.cpu_only("the example's CPU body; test_kernel_runs_on_gpu_vs_cpu_body runs its kernel")
def test_seed_example_cpu():
    ex = _example()
    rng = np.random.default_rng(1)
    a = rng.standard_normal(ex.N).astype(np.float32)
    y = ex.spectral_filter(ts.asarray(a))
    h = np.zeros(ex.N)
    h[:ex.TAPS] = ex.H
    ref = np.fft.irfft(np.fft.rfft(a.astype(np.float64)) * np.fft.rfft(h), ex.N)
    assert_close(y, ref, rtol=1e-5, atol=1e-5)
    assert y._name == "custom.custom_spectral_filter"
    assert op.gradcheck(ex.spectral_filter, ts.asarray(a)).ok
    assert op.gradcheck(ex.spectral_filter_adjoint, ts.asarray(a)).ok
    with pytest.raises(ts.ShapeError, match=r"\[custom_spectral_filter\] input 0 has shape \(512,\)"):
        ex.spectral_filter(ts.ones(512))


@pytest.mark.gpu
def test_kernel_runs_on_gpu_vs_cpu_body():
    ex = _example()
    a = np.random.default_rng(2).standard_normal(ex.N).astype(np.float32)
    y_gpu = ex.spectral_filter(ts.asarray(a, device="cuda"))
    y_cpu = ex.spectral_filter(ts.asarray(a))
    assert_close(y_gpu, y_cpu.numpy().astype(np.float64), rtol=1e-5, atol=1e-5)
    x = ts.asarray(a, device="cuda", requires_grad=True)
    (ex.spectral_filter(x) ** 2).sum().backward()
    xc = ts.asarray(a, requires_grad=True)
    (ex.spectral_filter(xc) ** 2).sum().backward()
    assert_close(x.grad, xc.grad.numpy().astype(np.float64), rtol=1e-4, atol=1e-4)
    s = _scale_op()
    assert_close(s(ts.asarray(a, device="cuda"), alpha=3.0), a.astype(np.float64) * 3, rtol=1e-6)


@pytest.mark.cpu_only("a cuda-typed stand-in device; the kernel launch is recorded, not run")
def test_kernel_args_receive_the_call_attributes(monkeypatch):
    # `args=` saw only its default alpha on the GPU (TRIAGE 2026-12-04 A10)
    from helpers import cuda_typed_cpu_device
    from tessera.backend import cupy_source
    monkeypatch.setattr(cupy_source, "cupy", lambda: np)  # the launch's ascontiguousarray
    s = _scale_op(compile_check=False)
    launches = []

    def scale(grid, block, args, shared_mem=0):  # the kernel, on the NumPy buffers
        x, y, n, alpha = args
        launches.append((int(n), float(alpha)))
        y[...] = alpha * x
    monkeypatch.setattr(s.kernel, "function", lambda: scale)
    dev = cuda_typed_cpu_device()
    a = np.array([1.0, -2.0, 0.5], np.float32)
    assert s(ts.asarray(a, device=dev), alpha=3.0).tolist() == [3.0, -6.0, 1.5]
    assert s(ts.asarray(a, device=dev)).tolist() == [2.0, -4.0, 1.0]
    assert launches == [(3, 3.0), (3, 2.0)]
