"""Mixture of experts: the grouped matmul against a NumPy loop (and its kernel run
under the CPU emulator), routing and capacity invariants (hypothesis), the layer
against a dense per-token reference, gradients against finite differences, the
hierarchical router against brute force, and the bad-input errors."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tessera as ts
from tessera.nn import moe_ops as M
from tests.helpers import assert_close, check_grad

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

RNG = np.random.default_rng(0)


def _offsets(sizes):
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _np_grouped(x, w, offs, trans_w=False):
    n = w.shape[1] if trans_w else w.shape[2]
    y = np.zeros((x.shape[0], n))
    for g in range(len(offs) - 1):
        a, b = offs[g], offs[g + 1]
        y[a:b] = x[a:b] @ (w[g].T if trans_w else w[g])
    return y


# -- grouped matmul ----------------------------------------------------------------------
@pytest.mark.parametrize("trans_w", [False, True])
@pytest.mark.parametrize("dtype", ["fp64", "fp32", "bf16"])
def test_grouped_matmul_matches_loop(device, dtype, trans_w):
    sizes = [3, 0, 5, 1]          # an empty group, and 2 tail rows past the last group
    offs = _offsets(sizes)
    x = RNG.standard_normal((sum(sizes) + 2, 6))
    w = RNG.standard_normal((4, 7, 6) if trans_w else (4, 6, 7))
    tx, tw = ts.asarray(x, dtype=dtype, device=device), ts.asarray(w, dtype=dtype, device=device)
    y = M.grouped_matmul(tx, tw, ts.asarray(offs, device=device), trans_w=trans_w)
    ref = _np_grouped(x, w, offs, trans_w)
    rtol = {"fp64": 1e-12, "fp32": 1e-5, "bf16": 3e-2}[dtype]
    assert_close(y, ref, rtol=rtol, atol=rtol * 10)
    assert np.all(y.numpy()[-2:].astype(np.float64) == 0)


def test_grouped_matmul_wgrad_matches_loop(device):
    offs = _offsets([2, 4, 0])
    a, b = RNG.standard_normal((7, 3)), RNG.standard_normal((7, 5))
    dw = M.grouped_matmul_wgrad(ts.asarray(a, device=device), ts.asarray(b, device=device),
                                ts.asarray(offs, device=device))
    ref = np.stack([a[offs[g]:offs[g + 1]].T @ b[offs[g]:offs[g + 1]] for g in range(3)])
    assert_close(dw, ref)


@pytest.mark.parametrize("trans_w", [False, True])
def test_grouped_matmul_gradients(trans_w):
    offs = ts.asarray(_offsets([2, 3, 1]))
    x = RNG.standard_normal((7, 4))
    w = RNG.standard_normal((3, 5, 4) if trans_w else (3, 4, 5))
    check_grad(lambda a, b: M.grouped_matmul(a, b, offs, trans_w=trans_w), x, w)
    # second order: the adjoints are grouped matmuls themselves
    check_grad(lambda a, b: M.grouped_matmul_wgrad(a, b, offs), x, RNG.standard_normal((7, 2)))


def test_grouped_matmul_bad_input():
    x, w = ts.ones((4, 3)), ts.ones((2, 5, 6))
    with pytest.raises(ts.errors.ShapeError, match=r"\[grouped_matmul\].*\(4, 3\).*\(2, 5, 6\)"):
        M.grouped_matmul(x, w, ts.asarray([0, 2, 4]))
    with pytest.raises(ts.errors.DTypeError, match=r"\[grouped_matmul\].*fp64"):
        M.grouped_matmul(x, ts.ones((2, 3, 6), dtype="fp64"), ts.asarray([0, 2, 4]))


# -- routing and planning --------------------------------------------------------------
def _np_plan(e, E, cap):
    """Reference: serve first choices (in token order) before second choices."""
    T, k = e.shape
    used, kept = np.zeros(E, int), {}
    for j in range(k):
        for t in range(T):
            ex = e[t, j]
            kept[(t, j)] = used[ex] < cap
            used[ex] += 1
    return kept


@given(T=st.integers(1, 12), E=st.integers(1, 5), k=st.integers(1, 3), cap=st.integers(1, 8),
       seed=st.integers(0, 2**16))
def test_plan_invariants(T, E, k, cap, seed):
    k = min(k, E)
    rng = np.random.default_rng(seed)
    e = np.stack([rng.permutation(E)[:k] for _ in range(T)])        # distinct choices per token
    p = M.plan(ts.asarray(e), E, cap)
    token, assign, expert = p.token.numpy(), p.assign.numpy(), p.expert.numpy()
    kept, offs = p.kept.numpy() > 0, p.offsets.numpy()
    counts = np.bincount(e.ravel(), minlength=E)
    assert sorted(assign.tolist()) == list(range(T * k))             # every assignment once
    assert np.array_equal(token, assign // k) and np.array_equal(expert, e.ravel()[assign])
    assert np.array_equal(p.counts.numpy(), counts)
    assert np.array_equal(np.diff(offs), np.minimum(counts, cap)) and offs[0] == 0
    assert kept[:offs[-1]].all() and not kept[offs[-1]:].any()       # kept rows packed first
    for g in range(E):
        assert (expert[offs[g]:offs[g + 1]] == g).all()
    assert p.num_dropped == int(np.maximum(counts - cap, 0).sum())
    ref = _np_plan(e, E, cap)
    assert {(int(a) // k, int(a) % k) for a, kk in zip(assign, kept) if kk} == \
        {key for key, v in ref.items() if v}


@given(T=st.integers(1, 10), E=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_route_invariants(T, E, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, E + 1))
    x, wg = rng.standard_normal((T, 4)), rng.standard_normal((4, E))
    r = M.route(ts.asarray(x, dtype="fp64"), ts.asarray(wg, dtype="fp64"), k)
    probs = np.exp(x @ wg)
    probs /= probs.sum(1, keepdims=True)
    ex, g = r.experts.numpy(), r.gates.numpy()
    assert ex.shape == (T, k) and all(len(set(row)) == k for row in ex.tolist())
    top = np.sort(probs, 1)[:, ::-1][:, :k]
    np.testing.assert_allclose(np.take_along_axis(probs, ex, 1), top, rtol=1e-12)
    np.testing.assert_allclose(g, top / top.sum(1, keepdims=True) if k > 1 else top, rtol=1e-12)


def test_noisy_routing_only_while_training():
    moe = ts.nn.MoE(6, 8, num_experts=4, k=1, noisy=True, capacity_factor=None,
                    generator=ts.random.Generator(0))
    x = ts.asarray(RNG.standard_normal((64, 6)), dtype="fp32")
    moe.eval()
    r1, r2 = moe.route(x), moe.route(x)
    assert r1.experts.tolist() == r2.experts.tolist()              # deterministic in eval
    moe.train()
    assert moe.route(x).experts.tolist() != r1.experts.tolist()    # noise moves some choices
    moe.eval()
    assert moe.route(x).experts.tolist() == r1.experts.tolist()


def test_load_balancing_loss():
    T, E = 8, 4
    probs = ts.full((T, E), 1.0 / E, dtype="fp64")
    e = ts.asarray(np.arange(T).reshape(T, 1) % E)
    assert math.isclose(M.load_balancing_loss(probs, M.plan(e, E, T)).item(), 1.0)
    # collapsed routing costs E
    pr = np.zeros((T, E))
    pr[:, 0] = 1
    p = M.plan(ts.zeros((T, 1), dtype="int64"), E, T)
    assert math.isclose(M.load_balancing_loss(ts.asarray(pr), p).item(), float(E))


# -- the layer --------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3])
def test_moe_equals_dense_reference_without_capacity(device, k):
    moe = ts.nn.MoE(6, 10, num_experts=4, k=k, capacity_factor=None, dtype="fp64", device=device,
                    generator=ts.random.Generator(1))
    x = ts.asarray(RNG.standard_normal((3, 7, 6)), dtype="fp64", device=device)
    y = moe(x)
    assert y.shape == (3, 7, 6) and moe.stats["dropped"] == 0
    assert_close(y, moe.dense_reference(x).numpy())


def test_moe_capacity_drops_are_counted_and_zero():
    moe = ts.nn.MoE(4, 6, num_experts=3, k=1, capacity_factor=0.5, dtype="fp64",
                    generator=ts.random.Generator(2))
    x = ts.asarray(RNG.standard_normal((12, 4)), dtype="fp64")
    y = moe(x).numpy()
    r = moe.route(x)
    e = r.experts.numpy()
    cap = math.ceil(0.5 * 12 / 3)
    ref_kept = _np_plan(e, 3, cap)
    assert moe.stats["capacity"] == cap
    assert moe.stats["dropped"] == sum(not v for v in ref_kept.values()) > 0
    dense = moe.dense_reference(x).numpy()
    for t in range(12):
        np.testing.assert_allclose(y[t], dense[t] if ref_kept[(t, 0)] else 0, atol=1e-12)
    with pytest.warns(UserWarning, match=r"\[MoE\] dropped \d+ of 12"):
        moe.warn_dropped = True
        moe(x)


def test_moe_gradients_against_finite_differences():
    moe = ts.nn.MoE(4, 5, num_experts=3, k=2, capacity_factor=1.0, dtype="fp64",
                    generator=ts.random.Generator(3))
    x0 = RNG.standard_normal((6, 4))
    check_grad(lambda x: moe(x), x0)
    e = moe.experts
    ps = [moe.w_gate, e.w1, e.b1, e.w2, e.b2]

    def f(x, wg, w1, b1, w2, b2):   # the functional pipeline, every parameter an input
        r = M.route(x, wg, 2)
        p = M.plan(r.experts, 3, M.capacity_for(6, 3, 2, 1.0))
        y = M.combine(M.expert_ffn(M.dispatch(x, p), p, w1, b1, w2, b2), r.gates, p)
        return y + 0.1 * M.load_balancing_loss(r.probs, p)
    check_grad(f, x0, *[q.numpy() for q in ps])


def test_moe_trains():
    ts.random.manual_seed(0)
    moe = ts.nn.MoE(8, 16, num_experts=4, k=2, capacity_factor=2.0, generator=ts.random.Generator(4))
    rng = np.random.default_rng(5)
    x = ts.asarray(rng.standard_normal((64, 8)), dtype="fp32")
    target = ts.asarray(np.sin(rng.standard_normal((8, 8)) @ x.numpy().T).T, dtype="fp32")
    opt = ts.optim.Adam(moe.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = ts.mean((moe(x) - target) ** 2) + 0.01 * moe.aux_loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_moe_bad_input():
    with pytest.raises(ts.errors.ShapeError, match=r"\[MoE\] k=5 .*1\.\.4"):
        ts.nn.MoE(4, 4, num_experts=4, k=5)
    moe = ts.nn.MoE(4, 4, num_experts=4, k=1, capacity_factor=0.0)
    with pytest.raises(ts.errors.ShapeError, match=r"\[MoE\] capacity_factor=0.0 gives 0 slots.*"
                                                   r"every token would be dropped"):
        moe(ts.ones((3, 4)))
    with pytest.raises(ts.errors.ShapeError, match=r"\[MoE\] input \(3, 5\)"):
        ts.nn.MoE(4, 4, num_experts=2, k=1)(ts.ones((3, 5)))
    with pytest.raises(ts.errors.ShapeError, match=r"\[moe.route\] k=3 .*1\.\.2"):
        M.route(ts.ones((3, 4)), ts.ones((4, 2)), 3)
    with pytest.raises(ts.errors.ShapeError, match=r"\[moe.plan\] capacity 0 drops every token"):
        M.plan(ts.zeros((3, 1), dtype="int64"), 2, 0)


# -- hierarchical router -----------------------------------------------------------------
def test_hierarchical_router_against_brute_force():
    rt = ts.nn.HierarchicalRouter(5, branching=(3, 4), k=(2, 2), dtype="fp64",
                                  generator=ts.random.Generator(6))
    x = RNG.standard_normal((9, 5))
    r = rt(ts.asarray(x, dtype="fp64"))
    sm = lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)  # noqa: E731
    p0 = sm(x @ rt.w0.numpy())                                    # (T, 3)
    p1 = sm((x @ rt.w1.numpy()).reshape(9, 3, 4))                 # (T, 3, 4)
    np.testing.assert_allclose(r.probs.numpy(), (p0[:, :, None] * p1).reshape(9, 12), rtol=1e-12)
    for t in range(9):
        groups = np.argsort(-p0[t], kind="stable")[:2]
        g0 = p0[t, groups] / p0[t, groups].sum()
        want = {}
        for gi, gg in zip(groups, g0):
            subs = np.argsort(-p1[t, gi], kind="stable")[:2]
            g1 = p1[t, gi, subs] / p1[t, gi, subs].sum()
            for s, w in zip(subs, g1):
                want[gi * 4 + s] = gg * w
        got = dict(zip(r.experts.numpy()[t].tolist(), r.gates.numpy()[t].tolist()))
        assert set(got) == set(want)
        np.testing.assert_allclose([got[e] for e in want], list(want.values()), rtol=1e-12)


def test_hierarchical_moe_dense_and_grad():
    moe = ts.nn.HierarchicalMoE(4, 6, branching=(2, 3), k=(1, 2), capacity_factor=None,
                                dtype="fp64", generator=ts.random.Generator(7))
    x = RNG.standard_normal((8, 4))
    y = moe(ts.asarray(x, dtype="fp64")).numpy()
    r = moe.router(ts.asarray(x, dtype="fp64"))
    ref = np.zeros_like(x)
    for t in range(8):
        for e, g in zip(r.experts.numpy()[t], r.gates.numpy()[t]):
            ref[t] += g * moe.experts.dense(ts.asarray(x[t:t + 1], dtype="fp64"), int(e)).numpy()[0]
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)
    assert moe.stats["assignments"] == 16
    check_grad(lambda v: moe(v) + moe.aux_loss, x)
    with pytest.raises(ts.errors.ShapeError, match=r"\[HierarchicalRouter\] k=\(3, 1\)"):
        ts.nn.HierarchicalRouter(4, branching=(2, 2), k=(3, 1))


# -- the CUDA kernel -----------------------------------------------------------------------
KERNEL_HOST = pytest.mark.cpu_only("the grouped-matmul kernel checked on the host (registry and "
                                   "geometry, C++ emulator, NVRTC/hipcc compiles)")


@KERNEL_HOST
def test_kernel_registered_and_geometry():
    from tessera.kernels.launchers import grouped_matmul as gm
    from tessera.kernels.launchers.registry import HIP_INSTANTIATIONS, INSTANTIATIONS
    assert len(INSTANTIATIONS["grouped_matmul.cu"]) == 12 == len(HIP_INSTANTIATIONS["grouped_matmul.cu"])
    # grid.y bounds the (group, tile) pairs: sum ceil(n_g / 64) <= ceil(R / 64) + G
    sizes = [65, 1, 0, 127]
    grid, block = gm.grouped_grid(sum(sizes), len(sizes), 100, "fp32")
    assert grid[0] == 2 and grid[1] >= sum(-(-s // 64) for s in sizes) and block == (256, 1, 1)
    assert gm.wgrad_grid(4, 130, 65, "fp64") == ((2, 3, 4), (256, 1, 1))


@pytest.mark.parametrize("trans_w", [False, True])
def test_grouped_matmul_across_tiles(device, trans_w):
    """Groups that straddle and fill 64-row tiles, an empty group, tail rows, K and N
    off the tile sizes: on cuda the real launcher and kernel (the simulator in CI)."""
    R, K, N, G = 150, 37, 70, 4
    offs = np.array([0, 64, 64, 129, 148])
    x, dy = RNG.standard_normal((R, K)), RNG.standard_normal((R, N))
    w = RNG.standard_normal((G, N, K) if trans_w else (G, K, N))
    to = lambda a: ts.asarray(a, dtype="fp32", device=device)  # noqa: E731
    y = M.grouped_matmul(to(x), to(w), ts.asarray(offs, device=device), trans_w=trans_w)
    assert_close(y, _np_grouped(x, w, offs, trans_w), rtol=1e-5, atol=1e-4)
    dw = M.grouped_matmul_wgrad(to(x), to(dy), ts.asarray(offs, device=device))
    ref = np.stack([x[offs[g]:offs[g + 1]].T @ dy[offs[g]:offs[g + 1]] for g in range(G)])
    assert_close(dw, ref, rtol=1e-5, atol=1e-4)


def _nvrtc_reason():
    from tessera.kernels import loader
    try:
        from cuda.bindings import nvrtc  # noqa: F401
    except Exception as e:
        return f"cuda.bindings.nvrtc not importable ({e})"
    if not loader.cuda_include_dirs():
        return "no CUDA toolkit headers for NVRTC"
    return None


@KERNEL_HOST
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernel_compiles_nvrtc(arch):
    """One instantiation per kernel here (tests/kernels/test_compile.py compiles all)."""
    from tessera.kernels import loader
    from tessera.kernels.launchers.registry import grouped_matmul_name, grouped_wgrad_name
    if _nvrtc_reason():
        pytest.skip(_nvrtc_reason())
    names = [grouped_matmul_name("fp32", True), grouped_wgrad_name("bf16")]
    rep = loader.compile_check_nvrtc("grouped_matmul.cu", names, arch=arch)
    assert set(rep.kernels) == set(names) and not rep.spilling()


@KERNEL_HOST
def test_kernel_compiles_hipcc():
    from tessera.kernels import loader
    from tessera.kernels.launchers.registry import grouped_matmul_name
    if loader.hipcc_path() is None:
        pytest.skip("hipcc not installed")
    rep = loader.compile_check_hipcc("grouped_matmul.cu", [grouped_matmul_name("fp16")], arch="gfx90a")
    assert rep.kernels and not rep.spilling()


@pytest.mark.gpu
def test_moe_gpu_matches_cpu():
    moe = ts.nn.MoE(64, 128, num_experts=8, k=2, capacity_factor=1.0, device="cpu",
                    generator=ts.random.Generator(8, "cpu"))
    x = RNG.standard_normal((300, 64))
    y_cpu = moe(ts.asarray(x, dtype="fp32", device="cpu")).numpy()
    moe.to("cuda")
    xg = ts.asarray(x, dtype="fp32", device="cuda", requires_grad=True)
    y = moe(xg)
    np.testing.assert_allclose(y.numpy(), y_cpu, rtol=1e-4, atol=1e-4)
    y.sum().backward()
    assert xg.grad is not None and np.isfinite(xg.grad.numpy()).all()
