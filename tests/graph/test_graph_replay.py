"""Capture and replay: every replay must equal eager execution of the same function
on the same new inputs (bit for bit: replay runs the same kernels)."""
import numpy as np
import pytest

import tessera as ts
from tessera.graph import CaptureError, capture, trace
from graph_programs import (RNG, ew_chain, gather, mlp_params, mm, rand, reductions, softmax,
                            train_step)

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def same(a, b):
    """Equal structure and values (NaN-free programs: exact equality)."""
    if isinstance(a, ts.Tensor):
        assert isinstance(b, ts.Tensor) and a.shape == b.shape and a.dtype is b.dtype
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("n", [8, 300])  # on the CPU: eager below the fusion threshold, fused above
def test_elementwise_chain(n):
    x, y = rand(n, 128), rand(n, 128)
    g = capture(ew_chain, x, y)
    kinds = {st.kind for st in g.steps}
    eager = x.size < x.device.backend.FUSE_MIN_SIZE  # CUDA fuses at any size
    assert kinds == ({"ew"} if eager else {"fused"})
    for _ in range(3):
        x2, y2 = rand(n, 128), rand(n, 128)
        same(g(x2, y2), ew_chain(x2, y2))


@pytest.mark.parametrize("n", [6, 400])
def test_reductions_dict_output(n):
    x = rand(n, 96)
    g = capture(reductions, x)
    x2 = rand(n, 96)
    out = g(x2)
    assert isinstance(out, dict) and out["mean"].shape == ()
    same(out, reductions(x2))


def test_matmul_list_output_with_none():
    a, b = rand(5, 7), rand(5, 7)
    g = capture(lambda a, b: mm(a, b.T), a, b)
    a2, b2 = rand(5, 7), rand(5, 7)
    out = g(a2, b2)
    assert isinstance(out, list)
    same(out, mm(a2, b2.T))


def test_softmax():
    x = rand(4, 10)
    g = capture(softmax, x)
    x2 = rand(4, 10)
    same(g(x2), softmax(x2))
    np.testing.assert_allclose(g(x2).numpy().sum(-1), 1.0, rtol=1e-6)


def test_indexing_with_changing_index_tensor():
    x = rand(10, 3)
    idx = ts.asarray(np.array([0, 2, 2, 9]))
    g = capture(gather, x, idx)
    for _ in range(3):
        i2 = ts.asarray(RNG.integers(0, 10, size=4))
        same(g(x, i2), gather(x, i2))


def test_setitem_replays_with_new_indices_and_values():
    def f(buf, idx, v):
        out = buf * 1.0
        out[idx] = v
        return out
    buf = rand(6)
    g = capture(f, buf, ts.asarray(np.array([1, 3])), rand(2))
    idx, v = ts.asarray(np.array([0, 5])), rand(2)
    same(g(buf, idx, v), f(buf, idx, v))


def test_training_step_matches_eager_step_by_step():
    rng = np.random.default_rng(0)
    eager = mlp_params(rng)
    graph_params = [ts.asarray(p.numpy().copy(), requires_grad=True) for p in eager]
    xs = [rand(16, 32) for _ in range(6)]
    ys = [rand(16, 10) for _ in range(6)]
    g = capture(lambda x, y: train_step(graph_params, x, y), xs[0], ys[0])
    l0 = train_step(eager, xs[0], ys[0])
    assert float(g.result) == float(l0)
    losses = []
    for i in range(1, 6):
        le = train_step(eager, xs[i % 2], ys[i % 2])
        lr = g(xs[i % 2], ys[i % 2])
        assert lr.grad_fn is None  # replay outputs are off the tape
        assert float(lr) == float(le)
        for p, q in zip(eager, graph_params):
            np.testing.assert_array_equal(p.numpy(), q.numpy())
            np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())  # rebound grads
        losses.append(float(lr))
    assert losses[-1] < losses[0]  # training on two batches: the loss goes down


def test_external_tensors_are_captured_by_reference():
    w = ts.asarray(np.ones(3, np.float32))

    def f(x):
        return x * w
    g = capture(f, ts.ones((3,)))
    with ts.no_grad():
        w += 1.0  # updated after capture: the replay sees it
    np.testing.assert_array_equal(g(ts.ones((3,))).numpy(), [2, 2, 2])


def test_wrong_shape_dtype_structure_errors():
    g = capture(ew_chain, rand(4, 8), rand(4, 8))
    with pytest.raises(ts.ShapeError, match=r"args\[1\].*\(4, 8\).*\(5, 8\)"):
        g(rand(4, 8), rand(5, 8))
    with pytest.raises(ts.DTypeError, match=r"args\[0\].*fp32.*fp64"):
        g(rand(4, 8, dtype=np.float64), rand(4, 8))
    with pytest.raises(CaptureError, match="structure"):
        g(rand(4, 8))
    g2 = capture(lambda x, scale: x * scale, rand(3), 2.0)
    with pytest.raises(CaptureError, match="non-tensor"):
        g2(rand(3), 3.0)


def test_trace_decorator_captures_per_signature():
    calls = []

    @trace
    def f(x, y):
        calls.append(1)  # Python side effects run at capture only
        return ew_chain(x, y)
    a, b = rand(3, 4), rand(3, 4)
    same(f(a, b), ew_chain(a, b))
    a2, b2 = rand(3, 4), rand(3, 4)
    same(f(a2, b2), ew_chain(a2, b2))
    assert len(calls) == 1 and len(f.graphs) == 1
    c, d = rand(2, 4), rand(2, 4)
    same(f(c, d), ew_chain(c, d))
    assert len(calls) == 2 and len(f.graphs) == 2


def test_random_fwd_draws_fresh_values_in_replay():
    from tessera.ops._dispatch import apply_op
    rng = np.random.default_rng(7)

    def noisy(x):  # an op whose fwd draws: replay must draw again
        xp = x.device.backend.xp  # NumPy or CuPy: the buffer's own array module
        return apply_op("noise", (x,),
                        lambda b: b + xp.asarray(rng.standard_normal(b.shape).astype(b.dtype)),
                        x.dtype, x.device)
    g = capture(noisy, ts.zeros((64,)))
    a, b = g(ts.zeros((64,))), g(ts.zeros((64,)))
    assert not np.array_equal(a.numpy(), b.numpy())


def test_dropout_mask_is_fresh_in_replay():
    g = capture(lambda x: ts.dropout(x, 0.5), ts.ones((256,)))
    a, b = g(ts.ones((256,))), g(ts.ones((256,)))
    assert not np.array_equal(a.numpy(), b.numpy())


def test_dead_steps_are_dropped():
    def f(x):
        unused = ts.exp(x) * 3.0  # noqa: F841 (computed, never returned)
        return x + 1.0
    x = rand(4)
    g = capture(f, x)
    assert len(g.steps) == 1
    # eager (the CPU, below its fusion size): the dead ops ran, were recorded, then dropped;
    # lazy (CUDA): the dead group is never realized, so never recorded
    assert len(g.all_steps) == (3 if x.size < x.device.backend.FUSE_MIN_SIZE else 1)


def test_captures_do_not_nest():
    with pytest.raises(CaptureError, match="nest"):
        capture(lambda x: capture(ew_chain, x, x), rand(2))
    # the failed capture left no listener behind
    from tessera._config import STATE
    assert STATE.capture is None and not STATE.event_sinks


def test_same_tensor_passed_twice_becomes_two_inputs():
    x = rand(5)
    g = capture(lambda a, b: a * 2.0 + b, x, x)
    a, b = rand(5), rand(5)
    same(g(a, b), a * 2.0 + b)


def test_trace_inside_capture_is_inlined_and_replay_inside_capture_refused():
    inner = trace(lambda x: x * 3.0)
    inner(rand(3))  # captured
    g = capture(lambda x: inner(x) + 1.0, rand(3))
    x = rand(3)
    same(g(x), x * 3.0 + 1.0)
    g2 = capture(lambda x: x * 3.0, rand(3))
    with pytest.raises(CaptureError, match="inside a capture"):
        capture(lambda x: g2(x), rand(3))


def test_kwargs_and_nested_inputs():
    def f(xs, *, scale):
        return {"a": xs[0] * scale, "b": [xs[1].sum()]}
    g = capture(f, (rand(2, 3), rand(4)), scale=rand(2, 3))
    xs, s = (rand(2, 3), rand(4)), rand(2, 3)
    same(g(xs, scale=s), f(xs, scale=s))
    with pytest.raises(ts.ShapeError, match=r"kwargs\['scale'\]"):
        g(xs, scale=rand(3, 3))


def _module_step(model, opt, x, y):
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
    return loss


def _model(seed):
    from tessera import nn
    ts.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))


def test_nn_module_with_optim_sgd_replays_exactly():
    from tessera import optim
    me, mr = _model(0), _model(0)
    oe, orr = optim.SGD(me.parameters(), lr=0.1), optim.SGD(mr.parameters(), lr=0.1)
    xs, ys = [rand(16, 32) for _ in range(3)], [rand(16, 10) for _ in range(3)]
    g = capture(lambda x, y: _module_step(mr, orr, x, y), xs[0], ys[0])
    _module_step(me, oe, xs[0], ys[0])
    for i in range(1, 7):
        assert float(g(xs[i % 3], ys[i % 3])) == float(_module_step(me, oe, xs[i % 3], ys[i % 3]))
        for p, q in zip(me.parameters(), mr.parameters()):
            np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_out_of_place_optimizer_state_warns():
    # a hand-written momentum update that rebinds its state: replay cannot follow it
    from tessera.graph import CaptureWarning
    params = mlp_params(np.random.default_rng(4))
    state = {}

    def step(x, y):
        loss = train_step(params, x, y, lr=0.0)
        with ts.no_grad():
            for i, p in enumerate(params):
                m = state[i] = state.get(i, ts.zeros_like(p)) * 0.9 + p.grad
                p -= 0.1 * m
        return loss
    with pytest.warns(CaptureWarning, match="still held by a dict"):
        capture(step, rand(16, 32), rand(16, 10))


# -- optimizers with state: in-place state and a step count in a tensor replay exactly --
OPTIMIZERS = [
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3)),
]


@pytest.mark.parametrize("warmup", [0, 2], ids=["capture-first-step", "capture-third-step"])
@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in
                                                     enumerate(OPTIMIZERS)])
def test_optimizer_with_state_replays_like_eager(name, kw, warmup):
    import warnings
    from tessera import optim
    from tessera.graph import CaptureWarning
    me, mr = _model(2), _model(2)
    oe = getattr(optim, name)(me.parameters(), **kw)
    orr = getattr(optim, name)(mr.parameters(), **kw)
    xs, ys = [rand(16, 32) for _ in range(3)], [rand(16, 10) for _ in range(3)]
    for i in range(warmup):
        _module_step(me, oe, xs[i % 3], ys[i % 3])
        _module_step(mr, orr, xs[i % 3], ys[i % 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaptureWarning)  # no state escapes the graph
        g = capture(lambda x, y: _module_step(mr, orr, x, y), xs[0], ys[0])
    _module_step(me, oe, xs[0], ys[0])
    for i in range(1, 6):
        lr_, le = g(xs[i % 3], ys[i % 3]), _module_step(me, oe, xs[i % 3], ys[i % 3])
        assert float(lr_) == float(le)
        for p, q in zip(me.parameters(), mr.parameters()):
            np.testing.assert_array_equal(p.numpy(), q.numpy())
    for p, q in zip(me.parameters(), mr.parameters()):  # the state too
        for k, v in oe.state[p].items():
            np.testing.assert_array_equal(v.numpy(), orr.state[q][k].numpy())
    if name != "SGD":
        assert float(orr.state[next(iter(mr.parameters()))]["step"]) == warmup + 6
