"""Neural-net functions (tessera/ops/nn.py, tessera/ops/losses.py): forward against
NumPy float64 formulas written here, over hypothesis shapes/axes/dtypes; gradients
by directional finite differences (check_grad); grad-of-grad of the ops with
hand-written adjoints; PyTorch (CPU) as a second reference when it is installed;
error messages."""
import numpy as np
import pytest
import scipy.special
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tessera as ts
from tessera._config import STATE
from tessera.random import Generator
from helpers import assert_close, check_grad, check_grad_grad, per_device, to_np64, tol

# Every test runs on each device (the default device is pinned to it, so the module-level
# lambdas below build their constants there too).
pytestmark = pytest.mark.usefixtures("device")

FLOATS = ("fp32", "fp64", "fp16", "bf16")


# -- NumPy float64 references ---------------------------------------------------------
def np_log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def np_softmax(x, axis=-1):
    return np.exp(np_log_softmax(x, axis))


def np_softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.logaddexp(0, beta * x) / beta)


ACTS = {  # name -> (tessera call, numpy reference)
    "relu": (ts.relu, lambda x: np.where(x > 0, x, 0.0)),
    "leaky_relu": (lambda x: ts.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "gelu": (ts.gelu, lambda x: 0.5 * x * (1 + scipy.special.erf(x / np.sqrt(2)))),
    "gelu_tanh": (lambda x: ts.gelu(x, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    "silu": (ts.silu, lambda x: x / (1 + np.exp(-x))),
    "softplus": (ts.softplus, np_softplus),
    "softplus_beta": (lambda x: ts.softplus(x, beta=2.0, threshold=3.0),
                      lambda x: np_softplus(x, 2.0, 3.0)),
    "mish": (ts.mish, lambda x: x * np.tanh(np.logaddexp(0, x))),
}


def np_layer_norm(x, k, w=None, b=None, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def np_cross_entropy(x, t, w=None, reduction="mean", ignore_index=-100, eps=0.0, cax=1):
    """PyTorch's definition, written out: per row -sum_c q_c log p_c with
    q = w_c ((1 - eps) [c == t] + eps / C); 'mean' divides by sum of w[t] (kept rows)."""
    lsm = np.moveaxis(np_log_softmax(x, cax), cax, -1)
    C = lsm.shape[-1]
    w = np.ones(C) if w is None else w
    if np.issubdtype(t.dtype, np.floating):
        q = np.moveaxis(t, cax, -1) * (1 - eps) + eps / C
        loss = -(q * w * lsm).sum(-1)
        denom = loss.size
    else:
        valid = t != ignore_index
        ts_ = np.where(valid, t, 0)
        onehot = np.eye(C)[ts_]
        q = w * ((1 - eps) * onehot + eps / C)
        loss = np.where(valid, -(q * lsm).sum(-1), 0.0)
        denom = np.where(valid, w[ts_], 0.0).sum()
    with np.errstate(invalid="ignore"):  # every row ignored: NaN, as PyTorch
        return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / denom}[reduction]


# -- forward: activations, softmax, norms ---------------------------------------------
@pytest.mark.parametrize("name, device", per_device(sorted(ACTS), {
    "relu", "gelu", "silu", "softplus", "leaky_relu"}))
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=6),
       dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2 ** 16))
def test_activation_forward(name, device, shape, dtype, seed):
    tf, nf = ACTS[name]
    x = ts.asarray(np.random.default_rng(seed).uniform(-5, 5, shape), dtype=dtype)
    y = tf(x)
    assert y.dtype == x.dtype
    assert_close(y, nf(to_np64(x)))


@pytest.mark.parametrize("log", [False, True])
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=6), data=st.data(),
       dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2 ** 16))
def test_softmax_forward(log, shape, data, dtype, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = ts.asarray(np.random.default_rng(seed).uniform(-8, 8, shape), dtype=dtype)
    y = (ts.log_softmax if log else ts.softmax)(x, axis=axis)
    assert y.dtype == x.dtype
    assert_close(y, (np_log_softmax if log else np_softmax)(to_np64(x), axis))


def test_softmax_edge_cases():
    assert ts.softmax(ts.asarray(3.0)).tolist() == 1.0
    big = ts.softmax(ts.asarray([1000.0, 1000.0, -1000.0]))  # no overflow
    assert_close(big, np.array([0.5, 0.5, 0.0]))
    assert ts.softmax(ts.asarray([1, 2])).dtype == ts.fp32  # ints go to the default float


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=6), data=st.data(),
       dtype=st.sampled_from(FLOATS), affine=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_layer_norm_forward(shape, data, dtype, affine, seed):
    k = data.draw(st.integers(1, len(shape)))
    rng = np.random.default_rng(seed)
    ns = shape[len(shape) - k:]
    x = ts.asarray(rng.uniform(-3, 3, shape) + 2, dtype=dtype)
    w = ts.asarray(rng.uniform(0.5, 2, ns), dtype=dtype) if affine else None
    b = ts.asarray(rng.uniform(-1, 1, ns), dtype=dtype) if affine else None
    y = ts.layer_norm(x, ns, w, b)
    ref = np_layer_norm(to_np64(x), k, None if w is None else to_np64(w),
                        None if b is None else to_np64(b))
    r, a = tol(dtype)
    assert_close(y, ref, rtol=r, atol=max(a, 1e-4 if dtype == "fp32" else a))  # cancellation


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
       dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2 ** 16))
def test_rms_norm_forward(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = ts.asarray(rng.uniform(-3, 3, shape), dtype=dtype)
    w = ts.asarray(rng.uniform(0.5, 2, shape[-1:]), dtype=dtype)
    xr = to_np64(x)
    e = float(ts.finfo(dtype).eps)
    ref = xr / np.sqrt((xr ** 2).mean(-1, keepdims=True) + e) * to_np64(w)
    assert_close(ts.rms_norm(x, shape[-1:], w), ref)


# -- forward: losses ------------------------------------------------------------------------
@given(n=st.integers(1, 5), c=st.integers(1, 6), extra=st.sampled_from([(), (3,), (2, 2)]),
       reduction=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans(),
       eps=st.sampled_from([0.0, 0.1]), ignore=st.booleans(), dtype=st.sampled_from(FLOATS),
       seed=st.integers(0, 2 ** 16))
def test_cross_entropy_class_index(n, c, extra, reduction, weighted, eps, ignore, dtype, seed):
    rng = np.random.default_rng(seed)
    x = ts.asarray(rng.uniform(-4, 4, (n, c) + extra), dtype=dtype)
    t = rng.integers(0, c, (n,) + extra)
    if ignore:
        t.reshape(-1)[0] = -100  # at least one row kept unless the batch is one row
    w = rng.uniform(0.5, 2, c) if weighted else None
    out = ts.cross_entropy(x, ts.asarray(t), None if w is None else ts.asarray(w, dtype=dtype),
                           reduction=reduction, label_smoothing=eps)
    wr = None if w is None else to_np64(ts.asarray(w, dtype=dtype))
    assert out.dtype == x.dtype
    assert_close(out, np_cross_entropy(to_np64(x), t, wr, reduction, eps=eps))


@given(shape=st.sampled_from([(4,), (3, 5), (2, 3, 4)]), eps=st.sampled_from([0.0, 0.2]),
       reduction=st.sampled_from(["mean", "sum", "none"]), dtype=st.sampled_from(FLOATS),
       seed=st.integers(0, 2 ** 16))
def test_cross_entropy_probabilities(shape, eps, reduction, dtype, seed):
    rng = np.random.default_rng(seed)
    cax = 1 if len(shape) > 1 else 0
    x = ts.asarray(rng.uniform(-4, 4, shape), dtype=dtype)
    p = np_softmax(rng.normal(size=shape), cax)
    out = ts.cross_entropy(x, ts.asarray(p, dtype=dtype), reduction=reduction,
                           label_smoothing=eps)
    assert_close(out, np_cross_entropy(to_np64(x), to_np64(ts.asarray(p, dtype=dtype)),
                                       None, reduction, eps=eps, cax=cax))


def test_cross_entropy_axis_last_and_unbatched():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 5))
    t = rng.integers(0, 5, (2, 3))
    got = ts.cross_entropy(ts.asarray(x), ts.asarray(t), axis=-1)
    assert_close(got, np_cross_entropy(x, t, cax=2))
    x1 = rng.normal(size=5)
    assert_close(ts.cross_entropy(ts.asarray(x1, dtype="fp64"), ts.asarray(2)),
                 np.array(-np_log_softmax(x1)[2]))
    assert np.isnan(float(ts.cross_entropy(ts.asarray(x[0]), ts.asarray([-100] * 3))))


def test_nll_mse_bce_forward():
    rng = np.random.default_rng(2)
    x, t = rng.normal(size=(4, 3)), rng.integers(0, 3, 4)
    w = rng.uniform(0.5, 2, 3)
    lp = np_log_softmax(x, 1)
    ref = -(lp[np.arange(4), t] * w[t]).sum() / w[t].sum()
    assert_close(ts.nll_loss(ts.asarray(lp, dtype="fp64"), ts.asarray(t), ts.asarray(w)), ref)
    y = rng.normal(size=(4, 3))
    assert_close(ts.mse_loss(ts.asarray(x, dtype="fp64"), ts.asarray(y)), ((x - y) ** 2).mean())
    z = rng.uniform(-30, 30, (4, 3))
    tgt = rng.uniform(0, 1, (4, 3))
    pw = np.array([1.0, 2.0, 0.5])
    sig = 1 / (1 + np.exp(-z))
    ref = -(pw * tgt * np.log(sig) + (1 - tgt) * np.log1p(-sig))
    got = ts.binary_cross_entropy_with_logits(ts.asarray(z, dtype="fp64"), ts.asarray(tgt),
                                              reduction="none", pos_weight=ts.asarray(pw))
    assert_close(got, ref, rtol=1e-7, atol=1e-9)
    huge = ts.binary_cross_entropy_with_logits(ts.asarray([1000.0, -1000.0]),
                                               ts.asarray([1.0, 0.0]), reduction="sum")
    assert float(huge) == 0.0  # stable: no inf - inf


# -- gradients (float64 finite differences along a random direction) ------------------------
def _ce_w(x, w):
    return ts.cross_entropy(x, ts.asarray([0, 2, -100, 1]), w, label_smoothing=0.1)


GRADS = {  # name -> (function of fp64 tensors, input shapes)
    **{n: (f, [(3, 4)]) for n, (f, _) in ACTS.items()},
    "softmax": (lambda x: ts.softmax(x, axis=0), [(3, 4)]),
    "log_softmax": (lambda x: ts.log_softmax(x, axis=-1), [(3, 4)]),
    "layer_norm": (lambda x, w, b: ts.layer_norm(x, (4,), w, b), [(3, 4), (4,), (4,)]),
    "layer_norm_2d": (lambda x: ts.layer_norm(x, (3, 4)), [(2, 3, 4)]),
    "rms_norm": (lambda x, w: ts.rms_norm(x, (4,), w), [(3, 4), (4,)]),
    "cross_entropy": (lambda x: _ce_w(x, ts.asarray([1.0, 2.0, 0.5])), [(4, 3)]),
    "cross_entropy_nd_none": (lambda x: ts.cross_entropy(
        x, ts.asarray([[0, 1], [2, 2]]), reduction="none"), [(2, 3, 2)]),
    "cross_entropy_probs": (lambda x, p: ts.cross_entropy(x, ts.softmax(p), label_smoothing=0.2,
                                                          weight=ts.asarray([1.0, 3.0, 2.0])),
                            [(4, 3), (4, 3)]),
    "nll_loss": (lambda x: ts.nll_loss(x, ts.asarray([0, 2, 1]), reduction="sum"), [(3, 3)]),
    "mse_loss": (lambda x, y: ts.mse_loss(x, y), [(3, 4), (3, 4)]),
    "bce_with_logits": (lambda x, y: ts.binary_cross_entropy_with_logits(
        x, ts.sigmoid(y), pos_weight=ts.asarray(2.0, dtype="fp64")), [(3, 4), (3, 4)]),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradient(name):
    fn, shapes = GRADS[name]
    rng = np.random.default_rng(3)
    check_grad(fn, *[rng.uniform(-2, 2, s) for s in shapes])


def test_kinks_follow_pytorch():
    x = ts.asarray([0.0], dtype="fp64", requires_grad=True)
    ts.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0]  # maximum(x, 0) would give 0.5
    for f, want in [(ts.softplus, 0.5), (lambda v: ts.binary_cross_entropy_with_logits(
            v, ts.asarray([1.0], dtype="fp64")), -0.5)]:
        x = ts.asarray([0.0], dtype="fp64", requires_grad=True)
        f(x).sum().backward()
        assert x.grad.tolist() == [want]


GRAD_GRADS = ["softmax", "log_softmax", "gelu", "gelu_tanh", "layer_norm", "layer_norm_2d",
              "cross_entropy", "cross_entropy_nd_none", "cross_entropy_probs", "silu", "mish"]


@pytest.mark.parametrize("name", GRAD_GRADS)
def test_grad_of_grad(name):
    fn, shapes = GRADS[name]
    rng = np.random.default_rng(4)
    check_grad_grad(fn, *[rng.uniform(-2, 2, s) for s in shapes])


def test_grad_of_grad_on_fused_tensors():
    """Big enough (>= the CPU fusion threshold) that the elementwise parts are lazy:
    saved tensors realized after they were saved must still be found by create_graph,
    and the fusion walk must cope with the second-order graph."""
    rng = np.random.default_rng(8)
    t = ts.asarray(rng.integers(0, 180, 192))
    check_grad_grad(lambda x: ts.cross_entropy(ts.softmax(x) * 3 + x * 2, t),
                    rng.uniform(-2, 2, (192, 180)))


def test_half_precision_gradients_are_close():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(4, 8))
    for dt in ("fp16", "bf16"):
        gs = []
        for d in (dt, "fp64"):
            x = ts.asarray(a, dtype=d, requires_grad=True)
            ts.sum(ts.layer_norm(ts.log_softmax(x), 8) * ts.asarray(a, dtype=d)).backward()
            assert x.grad.dtype == x.dtype
            gs.append(to_np64(x.grad))
        np.testing.assert_allclose(gs[0], gs[1], rtol=5e-2, atol=5e-2)


# -- graph capture: targets are op inputs, so a replay sees new targets ----------------------
def test_cross_entropy_replays_with_new_targets():
    events = []
    sink = lambda kind, payload: events.append(payload) if kind == "op" else None  # noqa: E731
    x = ts.asarray(np.random.default_rng(6).normal(size=(3, 4)))
    STATE.event_sinks.append(sink)
    try:
        ts.cross_entropy(x, ts.asarray([0, 1, 2]))
    finally:
        STATE.event_sinks.remove(sink)
    name, inputs, out, fwd = [e for e in events if e[0] == "cross_entropy"][0]
    new_t = ts.asarray([3, 3, 0])
    replay = fwd(*[new_t.data if t is inputs[1] else t.data for t in inputs if t is not None])
    assert_close(ts.asarray(replay), to_np64(ts.cross_entropy(x, new_t)))


# -- dropout -------------------------------------------------------------------------------
def test_dropout_rate_scaling_and_mask_in_backward(device):
    x = ts.ones((200, 100), device=device, requires_grad=True)
    p = 0.3
    y = ts.dropout(x, p, generator=Generator(0, device))
    yn = y.numpy()
    kept = yn != 0
    assert abs(1 - kept.mean() - p) < 4 * np.sqrt(p * (1 - p) / kept.size)
    np.testing.assert_allclose(yn[kept], 1 / (1 - p), rtol=1e-6)
    ts.sum(y).backward()
    np.testing.assert_array_equal(x.grad.numpy(), yn)  # same mask, same scale
    again = ts.dropout(x, p, generator=Generator(0, device))
    np.testing.assert_array_equal(again.numpy(), yn)


def test_dropout_identities_and_errors():
    x = ts.ones(5, requires_grad=True)
    assert ts.dropout(x, 0.5, training=False) is x
    assert ts.dropout(x, 0.0) is x
    z = ts.dropout(x, 1.0)
    assert z.tolist() == [0.0] * 5
    ts.sum(z).backward()
    assert x.grad.tolist() == [0.0] * 5
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[dropout\] p must be in \[0, 1\]"):
            ts.dropout(x, bad)
    with pytest.raises(ts.DTypeError, match="dropout"):
        ts.dropout(ts.asarray([1, 2]), 0.5)


# -- errors --------------------------------------------------------------------------------
def test_cross_entropy_errors():
    x = ts.zeros((4, 10))
    with pytest.raises(ts.IndexingError, match=r"\[cross_entropy\] target 12 is out of range "
                                               r"for 10 classes .*\(4, 10\)"):
        ts.cross_entropy(x, ts.asarray([1, 2, 12, 0]))
    with pytest.raises(ts.IndexingError, match="target -3"):
        ts.cross_entropy(x, ts.asarray([1, 2, -3, 0]))
    with pytest.raises(ts.ShapeError, match=r"expected \(4,\), got \(5,\)"):
        ts.cross_entropy(x, ts.asarray([0] * 5))
    with pytest.raises(ts.ShapeError, match=r"float target .* shape \(4, 10\), got \(4,\)"):
        ts.cross_entropy(x, ts.asarray([0.0] * 4))
    with pytest.raises(ts.DTypeError, match="bool"):
        ts.cross_entropy(x, ts.asarray([True] * 4))
    with pytest.raises(ts.ShapeError, match=r"weight must have shape \(10,\)"):
        ts.cross_entropy(x, ts.asarray([0] * 4), ts.ones(3))
    with pytest.raises(ValueError, match="reduction"):
        ts.cross_entropy(x, ts.asarray([0] * 4), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        ts.cross_entropy(x, ts.asarray([0] * 4), label_smoothing=2.0)
    with pytest.raises(ts.IndexingError, match=r"\[nll_loss\] target 10"):
        ts.nll_loss(x, ts.asarray([10, 0, 0, 0]))


def test_other_errors():
    with pytest.raises(ts.ShapeError, match=r"\[layer_norm\] normalized_shape \(3,\)"):
        ts.layer_norm(ts.zeros((2, 4)), 3)
    with pytest.raises(ts.ShapeError, match=r"\[layer_norm\] weight has shape \(3,\)"):
        ts.layer_norm(ts.zeros((2, 4)), 4, ts.ones(3))
    with pytest.raises(ts.ShapeError, match=r"\[softmax\] axis 2"):
        ts.softmax(ts.zeros((2, 4)), axis=2)
    with pytest.raises(ValueError, match=r"\[gelu\] approximate"):
        ts.gelu(ts.zeros(2), approximate="erf")
    with pytest.raises(ts.ShapeError, match=r"\[mse_loss\]"):
        ts.mse_loss(ts.zeros(2), ts.zeros(3))


# -- PyTorch as a second reference ----------------------------------------------------------
@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is not installed (pip install '.[interop]')")


@pytest.mark.torch
@pytest.mark.parametrize("seed", range(4))
def test_composition_matches_torch(torch, seed):
    """layer_norm -> gelu -> linear -> cross_entropy (+ dropout-free extras), forward
    and every input's gradient, against torch.autograd in float64."""
    F = torch.nn.functional
    rng = np.random.default_rng(seed)
    n, d, c = 6, 8, 5
    arrs = {"x": rng.normal(size=(n, d)), "g": rng.uniform(0.5, 2, d), "b": rng.normal(size=d),
            "w": rng.normal(size=(c, d)) / 3, "wb": rng.normal(size=c)}
    t = rng.integers(0, c, n)
    t[0] = -100
    cw = rng.uniform(0.5, 2, c)
    approx = ["none", "tanh"][seed % 2]
    eps = [0.0, 0.1][seed // 2]

    def run(lib, T):
        v = {k: T(a) for k, a in arrs.items()}
        if lib is ts:
            h = ts.gelu(ts.layer_norm(v["x"], (d,), v["g"], v["b"]), approximate=approx)
            h = ts.linear(ts.silu(h), v["w"], v["wb"])
            loss = ts.cross_entropy(h, ts.asarray(t), ts.asarray(cw), label_smoothing=eps) \
                + ts.mean(ts.log_softmax(h, axis=0) * ts.softmax(h)) + ts.mse_loss(h, h * 0.5)
        else:
            h = F.gelu(F.layer_norm(v["x"], (d,), v["g"], v["b"]), approximate=approx)
            h = F.linear(F.silu(h), v["w"], v["wb"])
            loss = F.cross_entropy(h, torch.tensor(t), torch.tensor(cw), label_smoothing=eps) \
                + (F.log_softmax(h, dim=0) * F.softmax(h, dim=-1)).mean() + F.mse_loss(h, h * 0.5)
        loss.backward()
        return float(loss.detach() if lib is not ts else loss), {k: np.asarray(to_np64(a.grad) if lib is ts else a.grad.numpy())
                             for k, a in v.items()}
    lt, gt = run(ts, lambda a: ts.asarray(a, dtype="fp64", requires_grad=True))
    lr, gr = run(torch, lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True))
    assert np.isclose(lt, lr, rtol=1e-10)
    for k in arrs:
        np.testing.assert_allclose(gt[k], gr[k], rtol=1e-8, atol=1e-10, err_msg=k)


@pytest.mark.torch
def test_losses_match_torch(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 4, 2))
    p = np_softmax(rng.normal(size=(3, 4, 2)), 1)
    z, y = rng.normal(size=(3, 4)), rng.uniform(size=(3, 4))
    cases = [
        (lambda a: ts.cross_entropy(a, ts.asarray(p), label_smoothing=0.3, reduction="sum"),
         lambda a: F.cross_entropy(a, torch.tensor(p), label_smoothing=0.3, reduction="sum"), x),
        (lambda a: ts.softplus(a, beta=3.0, threshold=2.0),
         lambda a: F.softplus(a, beta=3.0, threshold=2.0), z),
        (lambda a: ts.mish(a) + ts.leaky_relu(a, 0.2), lambda a: F.mish(a) + F.leaky_relu(a, 0.2), z),
        (lambda a: ts.binary_cross_entropy_with_logits(a, ts.asarray(y), ts.asarray(y),
                                                       pos_weight=ts.asarray([1.0, 2, 3, 4])),
         lambda a: F.binary_cross_entropy_with_logits(a, torch.tensor(y), torch.tensor(y),
                                                      pos_weight=torch.tensor([1.0, 2, 3, 4]).double()), z),
        (lambda a: ts.rms_norm(a, (4,)), lambda a: F.rms_norm(a, (4,)), z),
    ]
    for tf, rf, a in cases:
        xt = ts.asarray(a, dtype="fp64", requires_grad=True)
        xr = torch.tensor(a, requires_grad=True)
        ot, orr = tf(xt), rf(xr)
        u = rng.normal(size=tuple(orr.shape))
        ot.backward(ts.asarray(u, dtype="fp64"))
        orr.backward(torch.tensor(u))
        np.testing.assert_allclose(to_np64(ot), orr.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(to_np64(xt.grad), xr.grad.numpy(), rtol=1e-9, atol=1e-12)
