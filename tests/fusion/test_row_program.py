"""Row programs (fusion mode "aggressive"): last-axis reductions fused with their
elementwise consumers.  IR level: hypothesis-generated row programs through the C
kernel vs the NumPy evaluator, each one's CUDA source compiled with NVRTC.  Tensor
level: softmax / layer_norm from primitives run as ONE kernel and match mode("none")."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tessera as ts
from tessera.fusion.ir import alu, const, inp
from tessera.fusion.runtime import evaluate_numpy, run_cpu

from fusion_common import have_nvrtc

RED = ["reduce_sum", "reduce_max", "reduce_min"]
UN = ["exp", "negative", "abs", "tanh", "square"]
BIN = ["add", "subtract", "multiply", "maximum"]


@st.composite
def row_programs(draw):
    dt = draw(st.sampled_from(["fp32", "fp64", "fp16", "bf16"]))
    nd = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=nd - 1, max_size=nd - 1))) + (
        draw(st.sampled_from([1, 3, 17, 40, 130])),)
    ax = (nd - 1,)
    x, b = inp(0, dt), inp(1, dt)
    pool = [x, b]
    for _ in range(draw(st.integers(1, 6))):
        k = draw(st.integers(0, 2))
        a = draw(st.sampled_from(pool))
        if k == 0:
            n = alu(draw(st.sampled_from(RED)), alu("tanh", a) if draw(st.booleans()) else a, arg=ax)
        elif k == 1:
            n = alu(draw(st.sampled_from(UN)), alu("multiply", a, const(0.25, dt)))
        else:
            n = alu(draw(st.sampled_from(BIN)), a, draw(st.sampled_from(pool)))
        pool.append(n)
    outs = [n for n in pool[2:] if n.op in RED][-1:] + [pool[-1]]
    if not any(n.op in RED for n in outs) and not any(n.op in RED for n in pool):
        outs.append(alu("reduce_sum", pool[-1], arg=ax))
    bshape = draw(st.sampled_from([shape, shape[:-1] + (1,), (1,) * (nd - 1) + shape[-1:]]))
    seed = draw(st.integers(0, 2 ** 16))
    return dt, shape, bshape, list(dict.fromkeys(outs)), seed


@pytest.mark.cpu_only("IR-level row programs through the C kernel (run_cpu) on NumPy arrays")
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(row_programs())
def test_random_row_programs(prog):
    dt, shape, bshape, outs, seed = prog
    rng = np.random.default_rng(seed)
    from tessera.fusion.ir import numpy_dtype
    xa = rng.uniform(-2, 2, shape).astype(numpy_dtype(dt))
    ba = np.broadcast_to(rng.uniform(-2, 2, bshape).astype(numpy_dtype(dt)), shape)
    try:
        got = run_cpu(outs, [xa, ba], shape)
    except ValueError as e:  # an elementwise-only DAG or plain reduction is not a row program
        assert "row program" not in str(e)
        raise
    ref = evaluate_numpy(outs, [xa, ba], shape)
    tol = {"fp32": 2e-4, "fp64": 1e-9, "fp16": 2e-2, "bf16": 8e-2}[dt]
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        np.testing.assert_allclose(g.astype(np.float64), r.astype(np.float64), rtol=tol,
                                   atol=tol * max(1.0, float(np.abs(r.astype(np.float64)).max())))
    if have_nvrtc():
        from tessera.fusion.render_cuda import compile_check_cuda, render_cuda
        src, _ = render_cuda(outs, [(dt, shape), (dt, shape)], shape)
        compile_check_cuda(src)


def _softmax(x, b):
    e = ts.exp(x - ts.max(x, axis=-1, keepdims=True))
    return e / ts.sum(e, axis=-1, keepdims=True)


def _layer_norm(x, w):
    mu = ts.mean(x, axis=-1, keepdims=True)
    d = x - mu
    var = ts.mean(d * d, axis=-1, keepdims=True)
    return d / ts.sqrt(var + 1e-5) * w + 0.5


@pytest.mark.parametrize("fn", [_softmax, _layer_norm])
@pytest.mark.parametrize("shape", [(64, 1024), (3, 40, 700)])
def test_softmax_layernorm_one_kernel(fn, shape, device):
    rng = np.random.default_rng(0)
    xn = rng.standard_normal(shape).astype(np.float32)
    wn = rng.standard_normal(shape[-1:]).astype(np.float32)
    x, w = ts.asarray(xn, device=device), ts.asarray(wn, device=device)
    with ts.fusion.mode("none"):
        ref = fn(x, w).numpy()
    ts.fusion.explain(print_=False)
    with ts.fusion.mode("aggressive"):
        ts.fusion.clear_explain()
        y = fn(x, w)
        ts.realize(y)
        recs = ts.fusion.explain(print_=False)
    assert len(recs) == 1, [r["ops"] for r in recs]
    assert recs[0]["ops"].count("reduce_sum") + recs[0]["ops"].count("reduce_max") == 2
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=2e-6)


def test_held_row_statistic_is_an_output(device):
    xn = np.random.default_rng(1).standard_normal((128, 512)).astype(np.float32)
    x = ts.asarray(xn, device=device)
    with ts.fusion.mode("aggressive"):
        m = ts.max(x, axis=-1, keepdims=True)
        y = ts.exp(x - m)
        ts.realize(y)
        np.testing.assert_array_equal(m.numpy(), xn.max(-1, keepdims=True))
    np.testing.assert_allclose(y.numpy(), np.exp(xn - xn.max(-1, keepdims=True)), rtol=1e-6)


def test_default_mode_keeps_reductions_as_boundaries(device):
    xn = np.random.default_rng(2).standard_normal((64, 1024)).astype(np.float32)
    x = ts.asarray(xn, device=device)
    ts.fusion.explain(print_=False)
    with ts.fusion.mode("default"):
        ts.fusion.clear_explain()
        e = ts.exp(x * 1.0)
        ts.realize(e / ts.sum(e, axis=-1, keepdims=True))
        recs = ts.fusion.explain(print_=False)
    assert len(recs) >= 2
    assert any("reduction" in r["reason"] or "held" in r["reason"] for r in recs)


@pytest.mark.cpu_only("renders CUDA source text (and compiles it with NVRTC where installed)")
@pytest.mark.parametrize("dt, scratch", [("fp32", "double ts_red"), ("int32", "long long ts_redi"),
                                         ("bool", "long long ts_redi")])
def test_row_program_declares_its_shared_scratch(dt, scratch):
    # the H200 run compiled `__shared__ doublets_red[32];` (TRIAGE 2026-12-04 A5)
    from tessera.fusion.render_cuda import compile_check_cuda, render_cuda
    x = inp(0, dt)
    s = alu("reduce_sum", x if dt != "bool" else alu("cast", x, dtype="int32"), arg=(0,))
    e = alu("add", alu("cast", x, dtype="fp32"), alu("cast", s, dtype="fp32"))
    src, _ = render_cuda([e, s], [(dt, (1,))], (40,))
    decls = [ln for ln in src.splitlines() if "__shared__" in ln]
    assert decls == [f"  __shared__ {scratch}[32];"], decls
    if have_nvrtc():
        compile_check_cuda(src)
