"""cross_entropy's fast path for (N, C) CPU logits with class indices (no weights,
no smoothing, 'mean'/'sum'): the same numbers as the general path, which (N, C, 1)
logits take, for values, gradients, ignored rows and second derivatives."""
import numpy as np
import pytest

import tessera as ts
from tessera.errors import IndexingError

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def _both(x, t, **kw):
    """(loss, grad) through the fast path and through the general one."""
    out = []
    for shape_x, shape_t in ((x.shape, t.shape), (x.shape + (1,), t.shape + (1,))):
        a = ts.asarray(x.reshape(shape_x), requires_grad=True)
        loss = ts.cross_entropy(a, ts.asarray(t.reshape(shape_t)), **kw)
        loss.backward()
        out.append((loss.numpy(), a.grad.numpy().reshape(x.shape)))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("ignore", [None, 2])
def test_same_numbers_as_the_general_path(dtype, reduction, ignore):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((33, 10)) * 3).astype(dtype)
    t = rng.integers(0, 10, 33)
    kw = {"reduction": reduction} | ({} if ignore is None else {"ignore_index": ignore})
    (l1, g1), (l2, g2) = _both(x, t, **kw)
    np.testing.assert_allclose(l1, l2, rtol=1e-6 if dtype is np.float32 else 1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-6 if dtype is np.float32 else 1e-14,
                               atol=1e-7 if dtype is np.float32 else 1e-16)
    if ignore is not None:
        assert (g1[t == ignore] == 0).all()


def test_against_float64_reference():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 5))
    t = rng.integers(0, 5, 16)
    lsm = x - np.log(np.exp(x).sum(1, keepdims=True))
    a = ts.asarray(x, requires_grad=True)
    loss = ts.cross_entropy(a, ts.asarray(t))
    loss.backward()
    np.testing.assert_allclose(float(loss), -lsm[np.arange(16), t].mean(), rtol=1e-13)
    onehot = np.eye(5)[t]
    np.testing.assert_allclose(a.grad.numpy(), (np.exp(lsm) - onehot) / 16, rtol=1e-12)


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 1)])  # fast path, general path
def test_all_rows_ignored_gives_nan_and_zero_gradient(shape):
    """As torch: the mean over no rows is NaN, the gradient 0."""
    x = ts.asarray(np.ones(shape, np.float32), requires_grad=True)
    loss = ts.cross_entropy(x, ts.asarray(np.full((3,) + shape[2:], -100)))
    loss.backward()
    assert np.isnan(float(loss))
    assert not np.any(x.grad.numpy())


def test_second_derivative_uses_the_general_adjoint():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3))
    t = rng.integers(0, 3, 4)
    v = rng.standard_normal((4, 3))

    def hvp(xx):
        a = ts.asarray(xx, requires_grad=True)
        (g,) = ts.autograd.grad(ts.cross_entropy(a, ts.asarray(t.reshape(xx.shape[:1] + xx.shape[2:]))),
                                [a], create_graph=True)
        (h,) = ts.autograd.grad((g * ts.asarray(v.reshape(xx.shape))).sum(), [a])
        return h.numpy().reshape(x.shape)
    np.testing.assert_allclose(hvp(x), hvp(x[..., None]), rtol=1e-12, atol=1e-15)


def test_out_of_range_target_names_the_op():
    with pytest.raises(IndexingError, match=r"^\[cross_entropy\] target 7 is out of range"):
        ts.cross_entropy(ts.zeros((2, 4)), ts.asarray([0, 7]))


def test_captured_training_step_replays_the_gradient():
    """While capturing, the adjoint runs in tessera ops so the graph records it."""
    from tessera.graph import capture
    rng = np.random.default_rng(5)
    w = ts.asarray(rng.standard_normal((10, 8)).astype(np.float32), requires_grad=True)
    x = ts.asarray(rng.standard_normal((16, 8)).astype(np.float32))
    t = ts.asarray(rng.integers(0, 10, 16))

    def step():
        w.grad = None
        loss = ts.cross_entropy(ts.linear(x, w), t)
        loss.backward()
        return w.grad

    want = step().numpy().copy()
    g = capture(step)
    np.testing.assert_allclose(g().numpy(), want, rtol=1e-6, atol=1e-7)
