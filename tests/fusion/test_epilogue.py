"""The matmul epilogue hook (fusion mode "aggressive"): a pending matmul read as
act(matmul + bias) is recognized (the group a CUDA GEMM launch would absorb); on the
CPU the product runs on BLAS and the epilogue as one fused kernel, with the same values."""
import numpy as np
import pytest

import tessera as ts
from tessera.fusion import epilogue, lazy


def _pending_matmul(a, b):
    return lazy.lazy_matmul(a, b, a.dtype, (a.shape[0], b.shape[1]), a.device, lambda x, y: x @ y)


ACTS = {None: lambda v: v, "relu": ts.relu, "gelu": ts.gelu, "silu": ts.silu}
REF = {None: lambda v: v, "relu": lambda v: np.maximum(v, 0),
       "gelu": lambda v: 0.5 * v * (1 + np.vectorize(__import__("math").erf)(v / np.sqrt(2))),
       "silu": lambda v: v / (1 + np.exp(-v))}


def _group_of(y):
    """(outputs, order) of the pending group under y, as realize would see it."""
    order, seen, stack = [], set(), [(y._lazy, False)]
    while stack:
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        for s in n.srcs:
            if type(s) is lazy.LazyOp and s.buf is None and s.op != "matmul":
                stack.append((s, False))
    return [y._lazy], order


@pytest.mark.parametrize("act", [None, "relu", "gelu", "silu"])
@pytest.mark.parametrize("bias_first", [False, True])
def test_matches_and_runs(act, bias_first, device):
    rng = np.random.default_rng(0)
    an, bn = rng.standard_normal((256, 64)).astype(np.float32), rng.standard_normal((64, 192)).astype(np.float32)
    cn = rng.standard_normal(192).astype(np.float32)
    a, b, c = (ts.asarray(v, device=device) for v in (an, bn, cn))
    with ts.fusion.mode("aggressive"):
        mm = _pending_matmul(a, b)
        y = ACTS[act](c + mm if bias_first else mm + c)
        hit = epilogue.match(*_group_of(y))
        assert hit is not None and hit[0] is mm._lazy and hit[2] == act
        ts.fusion.explain(print_=False)
        ts.fusion.clear_explain()
        got = y.numpy()
        recs = ts.fusion.explain(print_=False)
    assert recs[-1].get("epilogue", {}).get("activation", "x") == act
    ref = REF[act]((an.astype(np.float64) @ bn) + cn)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_non_epilogue_groups_do_not_match(device):
    rng = np.random.default_rng(1)
    a = ts.asarray(rng.standard_normal((256, 64)).astype(np.float32), device=device)
    b = ts.asarray(rng.standard_normal((64, 192)).astype(np.float32), device=device)
    full = ts.asarray(rng.standard_normal((256, 192)).astype(np.float32), device=device)
    c = ts.asarray(rng.standard_normal(192).astype(np.float32), device=device)
    with ts.fusion.mode("aggressive"):
        for f in (lambda m: ts.exp(m + c), lambda m: m + full, lambda m: ts.relu(m * c),
                  lambda m: ts.relu(m + c) * 2.0):
            y = f(_pending_matmul(a, b))
            assert epilogue.match(*_group_of(y)) is None
            ts.realize(y)  # still computes (BLAS first)
