"""The eager CPU fast paths (elementwise plans, sum over all axes, 2-D matmul,
basic getitem) against the general dispatch path they shortcut.

A no-op event sink turns every fast path off (they only run with no sinks), so
each case runs twice and must agree bit for bit: values, dtype, buffer type,
tape node, gradients, version sharing and errors.
"""
import numpy as np
import pytest

import tessera as ts
from tessera._config import STATE
from tessera.errors import DTypeError, GradError, IndexingError, ShapeError
from helpers import check_grad

pytestmark = pytest.mark.cpu_only("the CPU backend's eager fast paths (CPU plans) against its general path")


class _general_path:
    """Context manager: a no-op event sink, so ops take the general path."""

    def __enter__(self):
        self.sink = lambda *a: None
        STATE.event_sinks.append(self.sink)

    def __exit__(self, *exc):
        STATE.event_sinks.remove(self.sink)


def _both(fn):
    fast = fn()
    with _general_path():
        slow = fn()
    return fast, slow


def _same(a, b):
    assert type(a) is type(b)
    if not isinstance(a, ts.Tensor):
        assert a == b
        return
    assert a.shape == b.shape and a.dtype is b.dtype and a.device is b.device
    assert type(a.data) is type(b.data)
    assert a.data.dtype == b.data.dtype
    assert np.asarray(a.data).tobytes() == np.asarray(b.data).tobytes()  # bit for bit, NaNs too
    assert a.requires_grad == b.requires_grad
    assert (a.grad_fn is None) == (b.grad_fn is None)
    if a.grad_fn is not None:
        assert a.grad_fn.name == b.grad_fn.name
        assert a.grad_fn.origins == b.grad_fn.origins
        assert len(a.grad_fn.saved) == len(b.grad_fn.saved)


RNG = np.random.default_rng(0)
VALS = {
    "fp32": RNG.standard_normal((3, 4)).astype(np.float32),
    "fp64": RNG.standard_normal((3, 4)),
    "int32": RNG.integers(-5, 6, (3, 4)).astype(np.int32),
    "int8": RNG.integers(-5, 6, (3, 4)).astype(np.int8),
    "bool": RNG.integers(0, 2, (3, 4)).astype(bool),
    "bf16": RNG.standard_normal((3, 4)).astype(np.float32),
    "complex64": (RNG.standard_normal((3, 4)) + 1j * RNG.standard_normal((3, 4))).astype(np.complex64),
}
BINARY = [ts.add, ts.subtract, ts.multiply, ts.divide, ts.maximum, ts.equal, ts.less,
          ts.pow, ts.logical_and, ts.bitwise_and, ts.floor_divide]
UNARY = [ts.exp, ts.negative, ts.abs, ts.sqrt, ts.sigmoid, ts.isnan, ts.floor, ts.square,
         ts.logical_not, ts.tanh]


def _call(fn, *args):
    try:
        return fn(*args)
    except Exception as e:  # the same error type either way
        return type(e)


@pytest.mark.parametrize("dt", sorted(VALS))
@pytest.mark.parametrize("fn", BINARY, ids=lambda f: f.__name__)
def test_binary_fast_equals_general(fn, dt):
    a = ts.asarray(VALS[dt], dtype=dt)
    b = ts.asarray(VALS[dt][::-1].copy(), dtype=dt)
    for args in ((a, b), (a, 2), (a, 1.5), (a, True), (3, a), (0.5, a), (a, b[0])):
        for _ in range(2):  # the first call builds the plan on the general path
            fast, slow = _both(lambda: _call(fn, *args))
            _same(fast, slow)


@pytest.mark.parametrize("dt", sorted(VALS))
@pytest.mark.parametrize("fn", UNARY, ids=lambda f: f.__name__)
def test_unary_fast_equals_general(fn, dt):
    a = ts.asarray(VALS[dt], dtype=dt)
    for x in (a, a[0, 0], a[1]):
        for _ in range(2):
            fast, slow = _both(lambda: _call(fn, x))
            _same(fast, slow)


@pytest.mark.parametrize("dt", sorted(VALS))
def test_where_fast_equals_general(dt):
    a = ts.asarray(VALS[dt], dtype=dt)
    b = ts.asarray(VALS[dt][::-1].copy(), dtype=dt)
    c = ts.asarray(VALS["bool"])
    for args in ((c, a, b), (c, a, 0), (c, 1.5, a), (c, 2, 3), (c, 1.0, 0.0), (c, a, b[0]),
                 (c[0], a, b), (c, a, True)):
        for _ in range(2):
            fast, slow = _both(lambda: _call(ts.where, *args))
            _same(fast, slow)


def test_errors_still_raised():
    a = ts.asarray(np.ones((2, 3), np.int8))
    a + 1
    with pytest.raises(DTypeError, match=r"^\[add\].*1000"):
        a + 1000
    x = ts.ones((2, 3))
    x + x
    with pytest.raises(ShapeError, match=r"^\[add\]"):
        x + ts.ones((4,))
    x + ts.ones((3,))
    x + ts.ones((3,))  # a broadcast pair seen before runs the fast path ...
    with pytest.raises(ShapeError, match=r"^\[add\]"):
        x + ts.ones((2, 2))  # ... a new pair still gets apply's checks
    with pytest.raises(DTypeError, match=r"^\[where\].*bool"):
        ts.where(ts.ones((2, 3)), x, 0.0)
    with pytest.raises(ShapeError, match=r"^\[matmul\]"):
        ts.ones((2, 3)) @ ts.ones((2, 3))
    with pytest.raises(IndexingError, match=r"^\[getitem\].*out of range"):
        x[5]
    with pytest.raises(IndexingError, match=r"^\[getitem\].*too many"):
        x[0, 0, 0]
    with pytest.raises(IndexingError, match=r"^\[getitem\]"):
        x[0, 7]


@pytest.mark.parametrize("dt", ["fp32", "fp64"])
def test_gradients_fast_equals_general(dt):
    def run():
        x = ts.asarray(VALS["fp64"], dtype=dt, requires_grad=True)
        y = ts.asarray(VALS["fp64"][::-1].copy(), dtype=dt, requires_grad=True)
        m = ts.asarray(VALS["fp64"][:, :3], dtype=dt, requires_grad=True)
        z = (x * y + 2.0 * x - y / 3.0) ** 2.0 - ts.exp(-x * x) + x * x
        z = (m.mT @ z)[1] * ts.tanh(z[0, 1:]).sum() + z[1:, ::2].sum() + ts.sum(m @ m)
        ts.sum(z).backward()
        return z, x.grad, y.grad, m.grad
    fast, slow = _both(run)
    for f, s in zip(fast, slow):
        np.testing.assert_allclose(f.numpy(), s.numpy(), rtol=1e-6 if dt == "fp32" else 1e-13)


def test_gradients_vs_finite_differences():
    check_grad(lambda x, y: ts.sum((x * y - x / (y * y + 1)) ** 2.0 * ts.exp(x)), VALS["fp64"],
               VALS["fp64"][::-1].copy())
    check_grad(lambda m: ts.sum((m @ m.mT)[1] * m[0, 1]) + ts.sum(m[1:, 0:2]), VALS["fp64"])


def test_second_order_through_fast_paths():
    def run():
        x = ts.asarray([0.3, -1.2, 2.0], dtype="fp64", requires_grad=True)
        (g,) = ts.autograd.grad(ts.sum(x * x * x + ts.exp(x)), [x], create_graph=True)
        (h,) = ts.autograd.grad(ts.sum(g * x), [x])
        return g.numpy(), h.numpy()
    (g, h), (gs, hs) = _both(run)
    x = np.array([0.3, -1.2, 2.0])
    np.testing.assert_allclose(g, 3 * x * x + np.exp(x), rtol=1e-13)
    np.testing.assert_allclose(h, 9 * x * x + np.exp(x) * (1 + x), rtol=1e-13)
    np.testing.assert_array_equal(g, gs)
    np.testing.assert_array_equal(h, hs)


def test_in_place_write_to_saved_tensor_is_caught():
    x = ts.asarray([1.0, 2.0], requires_grad=True)
    y = ts.asarray([3.0, 4.0])
    z = x * y
    y += 1.0
    with pytest.raises(GradError, match="modified in place"):
        ts.sum(z).backward()


def test_getitem_basic_views():
    base = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    x = ts.asarray(base)
    for key in (1, -1, slice(1, None), (0, 2), (1, slice(None, None, 2)), (-1, -2, 3),
                (slice(None), 1), ()):
        fast, slow = _both(lambda: x[key])
        _same(fast, slow)
        np.testing.assert_array_equal(fast.numpy(), base[key])
        assert fast._version is x._version
    v = x[1]
    x[1, 0, 0] = 100.0  # a view: the write is seen through it
    assert float(v[0, 0]) == 100.0


def test_sum_and_matmul_fast_equal_general():
    for dt in ("fp32", "fp64", "int32", "bf16"):
        a = ts.asarray(VALS["fp64"], dtype=dt)
        for f in (lambda: ts.sum(a), lambda: a.sum(), lambda: ts.sum(a[0, 0]),
                  lambda: a @ a.mT, lambda: a.mT @ a[:, :2]):
            fast, slow = _both(f)
            _same(fast, slow)
    np.testing.assert_allclose(float(ts.sum(ts.asarray(VALS["fp64"]))), VALS["fp64"].sum(),
                               rtol=1e-14)


def test_record_origins_argument_matches_search():
    from tessera.autograd.engine import _origin, record
    x = ts.asarray([1.0, 2.0], requires_grad=True)
    out = ts.asarray([0.0, 0.0])
    xd = x.detach()
    node = record("probe", (x, x), out, lambda g: (g, g), (xd,))
    assert node.origins == (_origin(xd, (x, x), (out,)),) == (("in", 0),)


def test_fast_paths_are_taken(monkeypatch):
    from tessera.ops import elementwise, indexing, linalg, reduce
    x = ts.asarray(VALS["fp32"], requires_grad=True)
    bias, mask = ts.ones((4,)), x > 0
    x * x, x + 1.0, 2.0 * x, ts.exp(x), x + bias, ts.where(mask, x, 0.0)  # plans
    calls = []
    monkeypatch.setattr(elementwise, "apply", lambda *a: calls.append(a))
    for mod in (indexing, linalg, reduce):
        monkeypatch.setattr(mod, "apply_op", lambda *a, **k: calls.append(a))
    xt = x.mT.detach()
    for f in (lambda: x * x, lambda: x + 1.0, lambda: 2.0 * x, lambda: ts.exp(x),
              lambda: x + bias, lambda: ts.where(mask, x, 0.0),
              lambda: ts.sum(x), lambda: x[1], lambda: x[1:, 2], lambda: x @ xt):
        assert isinstance(f(), ts.Tensor)
    assert calls == []


def test_matmul_origins_match_general_path():
    m = ts.asarray(VALS["fp64"][:, :3], requires_grad=True)
    for f in (lambda: m @ m, lambda: m @ m.mT, lambda: m[:, :3] @ m, lambda: m.mT @ m):
        fast, slow = _both(f)
        _same(fast, slow)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("zero", [0, 0.0, -0.0, 1.5])
def test_where_with_scalar_zero_is_bit_exact(dtype, zero):
    """`where(c, x, 0)` and `where(c, 0, x)` run as a bitwise AND on the CPU: +0.0
    where the zero is picked (NaN and inf in x included), x's exact bits elsewhere;
    -0.0 and other scalars go through numpy.where."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 6)).astype(dtype)
    x[0, :4] = x[1, :4] = [np.nan, np.inf, -np.inf, -0.0]
    c = rng.random((8, 6)) > 0.5
    c[0, :4], c[1, :4] = False, True
    for cc, xx in ((c, x), (c[:, ::2], x[:, ::2]), (c[0], x[0])):
        for got, want in ((ts.where(ts.asarray(cc), ts.asarray(xx), zero), np.where(cc, xx, dtype(zero))),
                          (ts.where(ts.asarray(cc), zero, ts.asarray(xx)), np.where(cc, dtype(zero), xx))):
            got = got.numpy()
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    g = ts.asarray(x, requires_grad=True)  # and its gradient is still recorded
    ts.where(ts.asarray(c), g, zero).sum().backward()
    np.testing.assert_array_equal(g.grad.numpy(), c.astype(dtype))
