"""Hypothesis-generated DAGs (mixed dtypes, broadcasting, strided and flipped views, several
outputs) through the generated C kernel vs the NumPy op-by-op evaluator; the CUDA source of
every generated DAG is also compiled with NVRTC."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera.fusion.ir import alu, const, inp, numpy_dtype
from tessera.fusion.runtime import evaluate_numpy, run_cpu

from fusion_common import have_nvrtc

pytestmark = pytest.mark.cpu_only("the fusion IR run by the C kernel (run_cpu) on NumPy arrays")

FDT = ["fp32", "fp16", "bf16", "fp64"]
F_UNARY = ["negative", "abs", "exp", "tanh", "sin", "sigmoid", "square", "floor"]
F_BINARY = ["add", "subtract", "multiply", "maximum", "minimum"]
TOL = {"fp32": 1e-4, "fp64": 1e-9, "fp16": 1e-2, "bf16": 4e-2, "int32": 0, "int8": 0, "bool": 0}


@st.composite
def dags(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    nin = draw(st.integers(1, 3))
    in_dt = [draw(st.sampled_from(FDT)) for _ in range(nin)]
    # phase 1 (exact): ints and bools are made from inputs only, so no libm ulp can flip them
    pool = {dt: [] for dt in FDT + ["int32", "int8", "bool"]}
    for i, dt in enumerate(in_dt):
        pool[dt].append(inp(i, dt))
    for _ in range(draw(st.integers(0, 3))):
        x = draw(st.sampled_from([inp(i, dt) for i, dt in enumerate(in_dt)]))
        y = draw(st.sampled_from(pool[x.dtype]))
        c = alu(draw(st.sampled_from(["less", "greater_equal", "not_equal"])), x, y)
        pool["bool"].append(c)
        pool[draw(st.sampled_from(["int32", "int8"]))].append(alu("cast", alu("floor", x), dtype="int32")
                                                             if False else alu("cast", x, dtype="int32"))
    if pool["int32"]:
        a = pool["int32"][-1]
        pool["int32"].append(alu(draw(st.sampled_from(["add", "multiply", "floor_divide", "remainder",
                                                       "maximum"])), a, const(draw(st.integers(-3, 3)), "int32")))
    # phase 2: float math over everything
    for _ in range(draw(st.integers(1, 7))):
        dt = draw(st.sampled_from([d for d in FDT if pool[d]] or ["fp32"]))
        if not pool[dt]:
            pool[dt].append(alu("cast", pool[in_dt[0]][0], dtype=dt))
        kind = draw(st.integers(0, 4))
        a = draw(st.sampled_from(pool[dt]))
        if kind == 0:
            n = alu(draw(st.sampled_from(F_UNARY)), a)
        elif kind == 1:
            b = draw(st.sampled_from(pool[dt] + [const(draw(st.floats(-2, 2, width=16)), dt)]))
            n = alu(draw(st.sampled_from(F_BINARY)), a, b)
        elif kind == 2 and pool["bool"]:
            n = alu("where", draw(st.sampled_from(pool["bool"])), a, draw(st.sampled_from(pool[dt])))
        elif kind == 3:
            src = draw(st.sampled_from([n for d in FDT + ["int32", "int8"] for n in pool[d]]))
            n = alu("cast", src, dtype=dt)
        else:
            n = alu("multiply", a, const(draw(st.sampled_from([0.5, -1.0, 2.0])), dt))
        pool[dt].append(n)
    cands = [n for d in pool for n in pool[d] if n.op != "input"]
    outs = draw(st.lists(st.sampled_from(cands), min_size=1, max_size=3, unique=True)) if cands \
        else [alu("negative", inp(0, in_dt[0]))]
    # input layouts: broadcast dims, transposed / flipped / strided views
    arrays = []
    for i, dt in enumerate(in_dt):
        bshape = tuple(1 if draw(st.booleans()) and draw(st.booleans()) else s for s in shape)
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
        base = rng.uniform(-3, 3, tuple(2 * s for s in bshape)).astype(numpy_dtype(dt))
        view = base[tuple(slice(None, None, -2) if draw(st.booleans()) else slice(None, None, 2)
                          for _ in bshape)]
        arrays.append(np.broadcast_to(view, shape))
    return outs, arrays, shape


def _check(outs, arrays, shape):
    got = run_cpu(outs, arrays, shape)
    ref = evaluate_numpy(outs, arrays, shape)
    for o, g, r in zip(outs, got, ref):
        assert g.dtype == r.dtype and g.shape == r.shape and g.flags.c_contiguous
        tol = TOL[o.dtype]
        gf, rf = g.astype(np.float64), r.astype(np.float64)
        np.testing.assert_allclose(gf, rf, rtol=tol, atol=tol * max(1.0, np.nanmax(np.abs(rf), initial=0)
                                                                     if np.isfinite(rf).any() else 1.0),
                                   equal_nan=True, err_msg=repr(o))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(dags())
def test_random_dag_matches_numpy(case):
    outs, arrays, shape = case
    _check(outs, arrays, shape)
    if have_nvrtc():
        from tessera.fusion.lower import analyze, lower, prepare
        from tessera.fusion.render_cuda import compile_check_cuda, render_cuda_ir
        p = prepare(outs)
        src, _ = render_cuda_ir(lower(p, analyze(p, arrays, shape)))
        compile_check_cuda(src)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(dags(), st.data())
def test_random_dag_reductions(case, data):
    outs, arrays, shape = case
    outs = [o for o in outs if o.dtype in ("fp32", "fp64")] or \
        [alu("cast", outs[0], dtype="fp32") if outs[0].dtype != "bool" else alu("cast", outs[0], dtype="fp32")]
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
    op = data.draw(st.sampled_from(["reduce_sum", "reduce_max", "reduce_min"]))
    red = [alu(op, o, arg=axes) for o in outs]
    got = run_cpu(red, arrays, shape)
    ref = evaluate_numpy(red, arrays, shape)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.astype(np.float64), r.astype(np.float64), rtol=1e-4,
                                   atol=1e-4 * max(1.0, float(np.nanmax(np.abs(r), initial=1))), equal_nan=True)
    if have_nvrtc():
        from tessera.fusion.lower import analyze, lower, prepare
        from tessera.fusion.render_cuda import compile_check_cuda, render_cuda_ir
        p = prepare(red)
        compile_check_cuda(render_cuda_ir(lower(p, analyze(p, arrays, shape)))[0])
