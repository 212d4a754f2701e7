"""Generated CUDA sources compile with NVRTC (sm_90) for every op family and dtype; the GPU
run itself is tested where a GPU is present (run_cuda with CuPy)."""
import numpy as np
import pytest

import tessera as ts

from tessera.fusion.ir import DTYPES, OPS, alu, inp
from tessera.fusion.render_cuda import compile_check_cuda, render_cuda

from fusion_common import FLOATS, INTS, needs_nvrtc

pytestmark = [needs_nvrtc,
              pytest.mark.cpu_only("renders CUDA source and compiles it with NVRTC on the host; "
                                   "run_cuda is called with CuPy arrays")]


@pytest.mark.parametrize("dtype", FLOATS + INTS + ["bool"])
def test_every_op_compiles(dtype):
    x, y = inp(0, dtype), inp(1, dtype)
    outs = []
    for op, info in OPS.items():
        if info.arity in (1, 2) and info.result in ("same", "bool") and DTYPES[dtype].kind in info.kinds:
            outs.append(alu(op, *([x, y][:info.arity])))
    outs += [alu("cast", x, dtype=t) for t in DTYPES]
    outs.append(alu("where", alu("equal", x, y), x, y))
    src, name = render_cuda(outs, [(dtype, (3, 1)), (dtype, (0, 1))])
    compile_check_cuda(src)


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "fp64", "int32", "uint8", "bool"])
def test_reductions_compile(dtype):
    x = inp(0, dtype)
    outs = [alu(op, x, arg=(1,)) for op in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min")]
    src, _ = render_cuda(outs, [(dtype, (3, 1))])
    assert "off = WARP_SIZE / 2" in src and "% WARP_SIZE" in src
    compile_check_cuda(src)


def _pending_ir(t):
    """IR roots and input metas of the pending fusion group under the lazy tensor t."""
    from tessera.fusion.execute import build_ir
    from tessera.fusion.ir import toposort
    from tessera.fusion.lazy import LazyOp
    order, seen = [], set()

    def visit(n):
        if id(n) not in seen:
            seen.add(id(n))
            for s in n.srcs:
                if type(s) is LazyOp and s.buf is None:
                    visit(s)
            order.append(n)
    visit(t._lazy)
    roots, _ = build_ir([t._lazy], order, t.shape, structure={})
    ins = sorted((n for n in toposort(roots) if n.op == "input"), key=lambda n: n.arg)
    return roots, [(n.dtype, (2, 2)) for n in ins]


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "fp64", "int32", "int8", "uint8"])
def test_relu_groups_compile(dtype):
    """`ts.relu` as it reaches the fusion buffer (forward, and for floats its adjoint)."""
    import tessera as ts
    floating = dtype.startswith("fp") or dtype == "bf16"
    x = ts.asarray(np.linspace(-2, 2, 40000).reshape(200, 200), dtype=dtype,
                   requires_grad=floating)  # above the CPU fusion size: pending groups
    y = ts.relu(x * 2)
    groups = [y]
    if floating:
        groups.append(ts.autograd.grad(y, x, grad_outputs=ts.ones(y.shape, dtype=dtype)))
    for t in groups:
        assert t._buf is None  # still pending
        src, _ = render_cuda(*_pending_ir(t))
        assert "ts_maximum_" in src  # relu's forward, recomputed in its adjoint's group
        compile_check_cuda(src)


def test_compile_error_raises_with_log():
    from tessera.fusion.render_cuda import CUDACompileError
    with pytest.raises(CUDACompileError, match="error"):
        compile_check_cuda('#include "functors.cuh"\n__global__ void k() { undefined_fn(); }')


def test_run_cuda_matches_cpu():
    if not ts.cuda_is_available():
        pytest.skip("no CUDA device (a GPU, or TESSERA_CUDA_SIM=1)")
    from tessera.backend.cupy_source import cupy
    cp = cupy()
    from tessera.fusion.runtime import run_cpu, run_cuda
    x = np.random.rand(257, 33).astype(np.float32)
    b = np.random.rand(1, 33).astype(np.float32)
    y = alu("tanh", alu("add", alu("exp", inp(0, "fp32")), inp(1, "fp32")))
    cpu = run_cpu([y], [x, np.broadcast_to(b, x.shape)], x.shape)[0]
    gpu = run_cuda([y], [cp.asarray(x), cp.broadcast_to(cp.asarray(b), x.shape)], x.shape)[0]
    np.testing.assert_allclose(cp.asnumpy(gpu), cpu, rtol=1e-5)
    s = alu("reduce_sum", y, arg=(1,))
    np.testing.assert_allclose(cp.asnumpy(run_cuda([s], [cp.asarray(x), cp.broadcast_to(cp.asarray(b), x.shape)],
                                                   x.shape)[0]),
                               run_cpu([s], [x, np.broadcast_to(b, x.shape)], x.shape)[0], rtol=1e-5)
