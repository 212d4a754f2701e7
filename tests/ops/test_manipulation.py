"""tessera.ops.manipulation against NumPy: concat/stack/unstack/split/tile/repeat/
flatten/ravel/atleast_nd/pad over random shapes, axes, dtypes and memory layouts
(transposed, strided, flipped views), their gradients (directional finite
differences in float64) and every error path."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tessera as ts
from tessera import dtypes as D
from tessera.device import Device
from tessera.errors import DeviceError, ShapeError
from core_strategies import LAYOUTS, make, values
from helpers import assert_close, check_grad, raises_op as _raises

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

DTYPES = ("fp32", "fp64", "int32", "bool", "fp16", "bf16")


def _operand(draw, shape, dtypes=DTYPES):
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(LAYOUTS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t, ref = make(values(rng, shape, dtype), dtype, layout)
    return t, ref


def _elsewhere(t):
    """A copy of `t` claiming to live on another device (only device identity is
    checked before any buffer is touched)."""
    u = ts.asarray(t.numpy())
    u.device = Device("cuda", 7)
    return u


@given(st.data())
def test_concat_matches_numpy(data):
    nd = data.draw(st.integers(1, 3))
    base = list(data.draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd)))
    axis = data.draw(st.integers(-nd, nd - 1))
    n = data.draw(st.integers(1, 3))
    ts_, refs = [], []
    for _ in range(n):
        shape = list(base)
        shape[axis] = data.draw(st.integers(0, 3))
        t, r = _operand(data.draw, tuple(shape))
        ts_.append(t)
        refs.append(r)
    out = ts.concat(ts_, axis=axis)
    assert out.dtype is D.result_type(*(t.dtype for t in ts_))
    assert_close(out, np.concatenate(refs, axis=axis).astype(np.float64), rtol=0, atol=0)


def test_concat_axis_none_and_promotion():
    a = ts.asarray(np.arange(6, dtype=np.int32).reshape(2, 3))
    b = ts.asarray(np.ones((4,), np.float16))
    out = ts.concat([a, b], axis=None)
    assert out.dtype is D.fp16 and out.shape == (10,)
    assert_close(out, np.concatenate([np.arange(6), np.ones(4)]))
    assert ts.concat([ts.ones(2, dtype="fp16"), ts.ones(2, dtype="bf16")]).dtype is D.fp32
    assert ts.concat([ts.asarray([True]), ts.asarray(np.int8([3]))]).dtype is D.int8


def test_concat_of_lazy_inputs():
    x, ref = ts.asarray(np.linspace(-1, 1, 70000)), np.linspace(-1, 1, 70000)
    out = ts.concat([x * 2.0, ts.exp(x)])
    assert_close(out, np.concatenate([ref * 2.0, np.exp(ref)]))


@given(st.data())
def test_stack_and_unstack_match_numpy(data):
    nd = data.draw(st.integers(0, 3))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd)))
    n = data.draw(st.integers(1, 3))
    pairs = [_operand(data.draw, shape) for _ in range(n)]
    axis = data.draw(st.integers(-nd - 1, nd))
    out = ts.stack([p[0] for p in pairs], axis=axis)
    assert_close(out, np.stack([p[1] for p in pairs], axis=axis).astype(np.float64))
    pieces = ts.unstack(out, axis=axis)
    assert isinstance(pieces, tuple) and len(pieces) == n
    for piece, (_, r) in zip(pieces, pairs):
        assert_close(piece, r)


@given(st.data())
def test_split_matches_numpy(data):
    nd = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.lists(st.integers(1, 6), min_size=nd, max_size=nd)))
    axis = data.draw(st.integers(-nd, nd - 1))
    t, r = _operand(data.draw, shape)
    n = shape[axis]
    if data.draw(st.booleans()):
        spec = data.draw(st.sampled_from([k for k in range(1, n + 1) if n % k == 0]))
    else:
        spec = data.draw(st.lists(st.integers(-n - 1, n + 1), max_size=3))
    got = ts.split(t, spec, axis=axis)
    want = np.split(r, spec, axis=axis)
    assert isinstance(got, list) and len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w, rtol=0, atol=0)


@given(st.data())
def test_tile_and_repeat_match_numpy(data):
    nd = data.draw(st.integers(0, 3))
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd)))
    t, r = _operand(data.draw, shape)
    reps = data.draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), max_size=4)))
    assert_close(ts.tile(t, reps), np.tile(r, reps), rtol=0, atol=0)
    axis = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1))) if nd else None
    n = r.size if axis is None else shape[axis]
    rep = data.draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), min_size=n,
                                                            max_size=n)))
    arg = ts.asarray(rep) if isinstance(rep, list) and data.draw(st.booleans()) else rep
    assert_close(ts.repeat(t, arg, axis=axis), np.repeat(r, rep, axis=axis), rtol=0, atol=0)


@given(st.data())
def test_pad_matches_numpy(data):
    nd = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd)))
    t, r = _operand(data.draw, shape, ("fp32", "fp64", "int32", "bf16"))
    mode = data.draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
    pw = data.draw(st.one_of(
        st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)),
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=nd, max_size=nd)))
    if mode == "constant":
        got, want = ts.pad(t, pw, value=2), np.pad(r, pw, constant_values=2)
    else:
        got, want = ts.pad(t, pw, mode=mode), np.pad(r, pw, mode=mode)
    assert got.dtype is t.dtype
    assert_close(got, want, rtol=0, atol=0)


def test_flatten_ravel_atleast():
    t, r = make(np.arange(24.0).reshape(2, 3, 4), "fp32", "transposed")
    assert_close(ts.ravel(t), r.ravel())
    assert_close(ts.flatten(t), r.flatten())
    assert_close(ts.flatten(t, 1), r.reshape(2, -1))
    assert_close(ts.flatten(t, 0, -2), r.reshape(6, 4))
    assert ts.flatten(ts.zeros((2, 0, 3)), 1).shape == (2, 0)
    assert ts.flatten(ts.asarray(3.0)).shape == (1,)
    for fn, nfn in ((ts.atleast_1d, np.atleast_1d), (ts.atleast_2d, np.atleast_2d),
                    (ts.atleast_3d, np.atleast_3d)):
        for shape in ((), (3,), (2, 3), (2, 3, 4)):
            assert fn(ts.zeros(shape)).shape == nfn(np.zeros(shape)).shape
        both = fn(ts.zeros(()), ts.zeros((2, 2)))
        assert [b.shape for b in both] == [a.shape for a in nfn(np.zeros(()), np.zeros((2, 2)))]


# ---- gradients -----------------------------------------------------------------
A = np.random.default_rng(1).standard_normal((3, 4))
B = np.random.default_rng(2).standard_normal((2, 4))


@pytest.mark.parametrize("fn, arrays", [
    (lambda a, b: ts.concat([a, b, a], axis=0), (A, B)),
    (lambda a, b: ts.concat([a.T, b.T], axis=-1), (A, B)),
    (lambda a, b: ts.concat([a, b], axis=None), (A, B)),
    (lambda a, b: ts.stack([a[:2], b, b], axis=1), (A, B)),
    (lambda a: ts.stack(ts.unstack(a, 1)[::-1], axis=0), (A,)),
    (lambda a: ts.concat(ts.split(a, [1, 3], axis=1)[::-1], axis=1), (A,)),
    (lambda a: ts.concat(ts.split(a, 3, axis=0)[1:], axis=0), (A,)),
    (lambda a: ts.tile(a, (2, 1, 3)), (A,)),
    (lambda a: ts.repeat(a, 3, axis=1), (A,)),
    (lambda a: ts.repeat(a, [2, 0, 1], axis=0), (A,)),
    (lambda a: ts.repeat(a.T, 2), (A,)),
    (lambda a: ts.flatten(a.T) * ts.ravel(a), (A,)),
    (lambda a: ts.pad(a, ((1, 2), (0, 3)), value=5.0), (A,)),
    (lambda a: ts.pad(a, 2, mode="reflect"), (A,)),
    (lambda a: ts.pad(a, ((1, 3), (2, 0)), mode="wrap"), (A,)),
    (lambda a: ts.pad(a, 1, mode="edge"), (A,)),
])
def test_gradients(fn, arrays):
    check_grad(fn, *arrays)


def test_concat_gradient_keeps_each_input_dtype():
    a = ts.asarray(np.ones((2, 2), np.float32), requires_grad=True)
    b = ts.asarray(np.ones((1, 2)), requires_grad=True)
    out = ts.concat([a, b])
    assert out.dtype is D.fp64
    (out * ts.asarray(np.arange(6.0).reshape(3, 2))).sum().backward()
    assert a.grad.dtype is D.fp32 and b.grad.dtype is D.fp64
    assert_close(a.grad, np.arange(4.0).reshape(2, 2))
    assert_close(b.grad, np.array([[4.0, 5.0]]))


def test_split_and_unstack_record_one_node_and_differentiate_twice():
    from tessera.autograd.engine import grad
    x = ts.asarray(np.arange(12.0).reshape(3, 4), requires_grad=True)
    pieces = ts.split(x, [1, 3], axis=1)
    assert len({id(p.grad_fn) for p in pieces}) == 1
    rows = ts.unstack(x)
    assert len({id(r.grad_fn) for r in rows}) == 1
    y = (pieces[1] ** 2).sum() + (rows[2] ** 3).sum()
    (g,) = (grad(y, x, create_graph=True),)
    xn = x.numpy()
    want = np.zeros((3, 4))
    want[:, 1:3] += 2 * xn[:, 1:3]
    want[2] += 3 * xn[2] ** 2
    assert_close(g, want)
    want2 = np.zeros((3, 4))
    want2[:, 1:3] += 2
    want2[2] += 6 * xn[2]
    assert_close(grad(g.sum(), x), want2)


# ---- errors --------------------------------------------------------------------


def test_concat_errors():
    a, b, c = ts.zeros((2, 3)), ts.zeros((2, 4)), ts.zeros((5, 3))
    _raises(ShapeError, "concat", lambda: ts.concat([a, b, c], axis=0),
            "axis 0", "(2, 3)", "(2, 4)", "(5, 3)")
    _raises(ShapeError, "concat", lambda: ts.concat([a, ts.zeros(3)], axis=1),
            "axis 1", "(2, 3)", "(3,)")
    _raises(ShapeError, "concat", lambda: ts.concat([ts.zeros(()), ts.zeros(())]),
            "zero-dimensional")
    _raises(ShapeError, "concat", lambda: ts.concat([]), "at least one")
    _raises(ShapeError, "concat", lambda: ts.concat(a), "list or tuple")
    _raises(ShapeError, "concat", lambda: ts.concat([a, a], axis=2), "axis 2")
    _raises(DeviceError, "concat", lambda: ts.concat([a, _elsewhere(a)]), str(a.device),
            "cuda:7")


def test_stack_unstack_split_errors():
    a, b = ts.zeros((2, 3)), ts.zeros((3, 2))
    _raises(ShapeError, "stack", lambda: ts.stack([a, b, a], axis=1), "axis 1", "(2, 3)",
            "(3, 2)")
    _raises(ShapeError, "stack", lambda: ts.stack([a, a], axis=3), "axis 3")
    _raises(ShapeError, "stack", lambda: ts.stack([]), "at least one")
    _raises(DeviceError, "stack", lambda: ts.stack([a, _elsewhere(a)]), "cuda:7")
    _raises(ShapeError, "unstack", lambda: ts.unstack(ts.zeros(())), "zero-dimensional")
    _raises(ShapeError, "unstack", lambda: ts.unstack(a, axis=2), "axis 2")
    _raises(ShapeError, "split", lambda: ts.split(a, 2, axis=1), "size 3", "2 equal")
    _raises(ShapeError, "split", lambda: ts.split(a, 0), "0 equal")
    _raises(ShapeError, "split", lambda: ts.split(a, [1.5]), "integers")
    _raises(ShapeError, "split", lambda: ts.split(ts.zeros(()), 1), "zero-dimensional")


def test_tile_repeat_flatten_errors():
    a = ts.zeros((2, 3))
    _raises(ShapeError, "tile", lambda: ts.tile(a, (2, -1)), "non-negative")
    _raises(ShapeError, "tile", lambda: ts.tile(a, (2.0,)), "integers")
    _raises(ShapeError, "repeat", lambda: ts.repeat(a, [1, 2], axis=1), "2 repeats", "size 3")
    _raises(ShapeError, "repeat", lambda: ts.repeat(a, -1), "non-negative")
    _raises(ShapeError, "repeat", lambda: ts.repeat(a, [[1, 2]], axis=0), "1-D")
    _raises(ShapeError, "repeat", lambda: ts.repeat(a, 2, axis=5), "axis 5")
    _raises(ShapeError, "flatten", lambda: ts.flatten(ts.zeros((2, 3, 4)), 2, 1), "start_axis")


def test_pad_errors():
    a = ts.zeros((2, 3))
    _raises(ShapeError, "pad", lambda: ts.pad(a, -1), "non-negative")
    _raises(ShapeError, "pad", lambda: ts.pad(a, ((1, 1), (1, 1), (1, 1))), "pad_width")
    _raises(ShapeError, "pad", lambda: ts.pad(a, 1.5), "pad_width")
    _raises(ValueError, "pad", lambda: ts.pad(a, 1, mode="mirror"), "mirror")
    _raises(ShapeError, "pad", lambda: ts.pad(ts.zeros((0, 2)), 1, mode="reflect"),
            "empty axis 0")
