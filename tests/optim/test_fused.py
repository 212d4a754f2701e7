"""The fused fast path of tessera.optim against the per-op path (`fused=False`): the
same bits, step after step, for every option; and the cases where it must not run."""
import numpy as np
import pytest

import tessera as ts
from tessera.optim import _fused

pytestmark = pytest.mark.cpu_only("the fused optimizer step is CPU-only by design (optim/_fused.py "
                                  "_DEVICES); tests/optim/test_optim.py covers every device")

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.1),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.05, weight_decay=0.01),
    dict(lr=0.05, maximize=True),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.02, maximize=True),
    dict(lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.1, maximize=True),
    dict(lr=0.05, momentum=0.7, nesterov=True, maximize=True),
]
ADAM_CONFIGS = [
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.02, weight_decay=0.05, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, amsgrad=True, maximize=True)),
]
CONFIGS = [("SGD", kw) for kw in SGD_CONFIGS] + ADAM_CONFIGS
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)]
# small: NumPy op by op on the per-op path; (160, 250): 40k elements, through the lazy
# fusion buffer and a generated C kernel there
SHAPES = [(7, 5), (5,), (160, 250)]


@pytest.fixture
def calls(monkeypatch):
    """Counts the fast path's kernel calls."""
    n = {"sgd": 0, "adam": 0}

    def spy(name):
        real = getattr(_fused, name)

        def fn(*a, **k):
            n[name] += 1
            return real(*a, **k)
        monkeypatch.setattr(_fused, name, fn)
    spy("sgd")
    spy("adam")
    return n


def _params(dtype, seed=0, make=None):
    rng = np.random.default_rng(seed)
    make = make or (lambda a: ts.asarray(a, dtype=dtype, requires_grad=True))
    return [make(rng.normal(size=s)) for s in SHAPES]


def _grads(steps, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s).astype(ts.dtypes.get_dtype(dtype).np_storage) for s in SHAPES]
            for _ in range(steps)]


def _train(name, kw, dtype, fused, steps=12, make=None, grad=None):
    ps = _params(dtype, make=make)
    # two groups, so that per-group hyperparameters reach the fast path
    groups = [{"params": ps[:2]}, {"params": ps[2:], "lr": kw["lr"] * 0.5}]
    opt = getattr(ts.optim, name)(groups, **kw, fused=fused)
    for gs in _grads(steps, dtype):
        for p, g in zip(ps, gs):
            p.grad = (grad or (lambda a: ts.asarray(a, dtype=dtype)))(g)
        opt.step()
    return ps, opt


def _assert_same(run_a, run_b):
    (pa, oa), (pb, ob) = run_a, run_b
    for a, b in zip(pa, pb):
        assert np.array_equal(a.numpy(), b.numpy())
        assert a._version.v > 0 and b._version.v > 0
    sa, sb = oa.state_dict()["state"], ob.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        assert sa[i].keys() == sb[i].keys()
        for k in sa[i]:
            va, vb = sa[i][k], sb[i][k]
            assert va.dtype is vb.dtype and va.shape == vb.shape, k
            assert np.array_equal(va.numpy(), vb.numpy()), k


@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_fused_matches_per_op_bitwise(name, kw, dtype, calls):
    slow = _train(name, kw, dtype, fused=False)
    assert calls == {"sgd": 0, "adam": 0}
    fast = _train(name, kw, dtype, fused=None)
    assert calls["sgd" if name == "SGD" else "adam"] == 12 * len(SHAPES)
    _assert_same(fast, slow)
    if name != "SGD":
        step = fast[1].state[fast[0][0]]["step"]
        assert step.dtype is ts.fp64 and step.shape == () and float(step) == 12


@pytest.mark.parametrize("name,kw", [CONFIGS[2], CONFIGS[7], ADAM_CONFIGS[4]],
                         ids=["SGD-damp", "SGD-nesterov-wd-max", "Adam-all"])
def test_strided_and_lazy_operands(name, kw, calls):
    """Non-contiguous parameters (a leaf made from a transposed array), gradients that
    are transposed or broadcast views, and lazy gradients (pending in the fusion
    buffer) take the fast path and give the per-op path's bits."""
    def transposed(a):
        return ts.asarray(np.ascontiguousarray(a.T).T, dtype="fp32", requires_grad=True)

    def strided_grad(a):  # a view with strides of its own: every second column
        wide = np.repeat(a[..., None], 2, axis=-1)
        return ts.asarray(wide, dtype="fp32")[..., 0]

    def lazy_grad(a):
        g = ts.asarray(a, dtype="fp32") * 1.0
        return g

    slow = _train(name, kw, "fp32", fused=False)
    for make, grad in [(transposed, None), (None, strided_grad), (None, lazy_grad)]:
        n0 = sum(calls.values())
        fast = _train(name, kw, "fp32", fused=None, make=make, grad=grad)
        assert sum(calls.values()) - n0 == 12 * len(SHAPES)
        _assert_same(fast, slow)
    assert not transposed(np.ones((3, 4)))._buf.flags.c_contiguous  # the case is real
    assert lazy_grad(np.ones(SHAPES[2]))._buf is None


def test_broadcast_gradient():
    """A gradient with stride-0 dimensions (broadcast_to) is only read: fine."""
    kw = dict(lr=0.1, momentum=0.9)
    out = []
    for fused in (False, None):
        p = ts.asarray(np.arange(12.0).reshape(3, 4), requires_grad=True)
        opt = ts.optim.SGD([p], **kw, fused=fused)
        for k in range(3):
            p.grad = ts.broadcast_to(ts.asarray([1.0, 2.0, 3.0, float(k)]), (3, 4))
            opt.step()
        out.append(p.numpy())
    assert np.array_equal(*out)


def test_views_see_the_update_and_versions_bump(calls):
    p = ts.asarray(np.arange(6.0).reshape(2, 3), dtype="fp32", requires_grad=True)
    row, t = p.detach()[1], p.detach().T
    v0 = p._version.v
    opt = ts.optim.Adam([p], lr=0.1)
    p.grad = ts.ones((2, 3))
    opt.step()
    assert calls["adam"] == 1
    assert np.array_equal(row.numpy(), p.numpy()[1]) and np.array_equal(t.numpy(), p.numpy().T)
    assert row._version.v > v0 and p._version.v > v0
    st = opt.state[p]
    assert all(st[k]._version.v > 0 for k in ("exp_avg", "exp_avg_sq", "step"))
    # a stale tape that saved p fails at backward, as after the per-op path
    y = ts.sum(p * p)
    p.grad = ts.ones((2, 3))
    opt.step()
    with pytest.raises(ts.GradError, match="modified in place"):
        y.backward()


def test_state_dict_has_no_scratch_and_resumes_across_paths():
    """The scratch buffers stay out of the state dict; a state dict saved on one path
    resumes on the other with the same bits as an uninterrupted run."""
    rng = np.random.default_rng(3)
    init, grads = rng.normal(size=(4, 3)), [rng.normal(size=(4, 3)) for _ in range(6)]

    def run(split, fused_before, fused_after):
        p = ts.asarray(init, requires_grad=True)
        opt = ts.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.2, fused=fused_before)
        for i, g in enumerate(grads):
            if i == split:
                sd = opt.state_dict()
                assert set(sd["state"][0]) == {"momentum_buffer", "grad_coef"}
                assert all("fused" not in grp for grp in sd["param_groups"])
                opt = ts.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.2, fused=fused_after)
                opt.load_state_dict(sd)
            p.grad = ts.asarray(g)
            opt.step()
        return p.numpy()
    ref = run(None, False, False)
    assert np.array_equal(run(3, None, False), ref)
    assert np.array_equal(run(3, False, None), ref)


def test_listeners_and_check_numerics_take_the_per_op_path(calls):
    from tessera.numerics import check_numerics
    p = ts.asarray(np.ones((3, 2)), dtype="fp32", requires_grad=True)
    opt = ts.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = ts.ones((3, 2))
    with ts.profiler.profile() as tl:
        opt.step()
    assert calls["sgd"] == 0
    assert [s.name for s in tl.filter(cat="inplace")] == ["SGD.momentum", "subtract"]
    with check_numerics():
        opt.step()
    assert calls["sgd"] == 0
    opt.step()
    assert calls["sgd"] == 1


def test_unsupported_dtypes_and_mixed_state_fall_back(calls):
    """fp16 (rounded differently inside and outside fused groups), a gradient of
    another dtype, and state loaded in another dtype take the per-op path: the same
    results, or the same error, as fused=False."""
    def run(fused, pdt, gdt, state_dt=None):
        p = ts.asarray(np.linspace(-1, 1, 6), dtype=pdt, requires_grad=True)
        opt = ts.optim.SGD([p], lr=0.1, momentum=0.9, fused=fused)
        if state_dt is not None:
            opt.load_state_dict({"state": {0: {"momentum_buffer": ts.ones((6,), dtype=state_dt)}},
                                 "param_groups": opt.state_dict()["param_groups"]})
        for k in range(3):
            p.grad = ts.asarray(np.linspace(0, 1, 6) + k, dtype=gdt)
            opt.step()
        return p.numpy()
    for args in [("fp16", "fp16"), ("fp64", "fp32")]:
        assert np.array_equal(run(None, *args), run(False, *args))
    for fused in (None, False):
        with pytest.raises(ts.DTypeError, match=r"\[subtract\] in place.*fp64.*fp32"):
            run(fused, "fp32", "fp32", "fp64")
    assert calls["sgd"] == 0
    assert np.array_equal(run(None, "fp32", "fp32", "fp32"), run(False, "fp32", "fp32", "fp32"))
    assert calls["sgd"] == 3


def test_fused_argument():
    p = ts.asarray([1.0, 2.0], dtype="fp16", requires_grad=True)
    with pytest.raises(ValueError, match=r"\[Adam\] fused=True supports fp32 and fp64.*fp16"):
        ts.optim.Adam([p], fused=True)
    with pytest.raises(ValueError, match=r"\[SGD\] fused must be None, True or False"):
        ts.optim.SGD([p], fused="yes")
    q = ts.asarray([1.0, 2.0], requires_grad=True)
    assert ts.optim.AdamW([q], fused=True).fused is True


@pytest.mark.parametrize("make", [
    lambda ps: ts.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.2),
    lambda ps: ts.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: ts.optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: ts.optim.AdamW(ps, lr=0.01, weight_decay=0.1)])
def test_one_pass_c_kernels_run_and_match_the_per_op_path(make):
    """Contiguous CPU parameters take the one-pass C kernels (kernels/cpu/*_step.c);
    their bits are the per-op path's."""
    from tessera.fusion import compile_c
    from tessera.optim import _fused
    if compile_c.compiler() is None:
        pytest.skip("no C compiler: the NumPy sequence runs instead")
    rng = np.random.default_rng(4)
    init = rng.standard_normal(40000).astype(np.float32)
    ps = [ts.asarray(init.copy(), requires_grad=True) for _ in range(2)]
    opts = [make([ps[0]]), make([ps[1]])]
    opts[1].fused = False
    for _ in range(4):
        for p, o in zip(ps, opts):
            o.zero_grad()
            (p * p * p).sum().backward()
            o.step()
    np.testing.assert_array_equal(ps[0].numpy(), ps[1].numpy())
    assert any(fn is not None for (k, dt), fn in _fused._NATIVE.items() if dt == np.float32)
