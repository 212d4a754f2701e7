"""Every differentiable op's gradient against central finite differences in
float64 (tests/helpers.py check_grad: a random-direction check), over random
shapes, broadcasting and axes; second derivatives (grad of grad, built with
create_graph=True) for the smooth ones."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tessera as ts
from tessera.autograd.engine import grad
from helpers import DEVICES, check_grad, per_device
from core_strategies import shapes

SEED = st.integers(0, 2**32 - 1)


def _u(rng, shape, lo, hi):
    return rng.uniform(lo, hi, size=shape)


# name -> (function, low, high): domains away from kinks and singularities
UNARY = {
    "negative": (ts.negative, -2, 2), "positive": (ts.positive, -2, 2),
    "abs": (ts.abs, 0.1, 2), "square": (ts.square, -2, 2),
    "reciprocal": (ts.reciprocal, 0.3, 2), "sqrt": (ts.sqrt, 0.2, 2),
    "rsqrt": (ts.rsqrt, 0.3, 2), "exp": (ts.exp, -2, 2), "exp2": (ts.exp2, -2, 2),
    "expm1": (ts.expm1, -2, 2), "log": (ts.log, 0.2, 2), "log1p": (ts.log1p, -0.5, 2),
    "log2": (ts.log2, 0.2, 2), "log10": (ts.log10, 0.2, 2), "sin": (ts.sin, -3, 3),
    "cos": (ts.cos, -3, 3), "tan": (ts.tan, -1.2, 1.2), "asin": (ts.asin, -0.8, 0.8),
    "acos": (ts.acos, -0.8, 0.8), "atan": (ts.atan, -2, 2), "sinh": (ts.sinh, -2, 2),
    "cosh": (ts.cosh, -2, 2), "tanh": (ts.tanh, -2, 2), "asinh": (ts.asinh, -2, 2),
    "acosh": (ts.acosh, 1.2, 3), "atanh": (ts.atanh, -0.8, 0.8), "erf": (ts.erf, -2, 2),
    "sigmoid": (ts.sigmoid, -4, 4), "neg_abs_x": (lambda x: ts.abs(x), -2, -0.1),
    "floor": (ts.floor, 0.1, 0.9), "ceil": (ts.ceil, 0.1, 0.9), "trunc": (ts.trunc, 0.1, 0.9),
    "round": (ts.round, 0.1, 0.4), "sign": (ts.sign, 0.1, 2),
    "clip": (lambda x: ts.clip(x, -0.5, 0.7), -2, 2),
    "clip_tensor_bounds": (lambda x: ts.clip(x, min=-1.0), -2, 2),
    "pow_scalar": (lambda x: x ** 3.0, -2, 2), "rpow_scalar": (lambda x: 2.0 ** x, -2, 2),
    "rdiv_scalar": (lambda x: 1.5 / x, 0.3, 2), "rsub_scalar": (lambda x: 1.5 - x, -2, 2),
    "astype_same": (lambda x: ts.astype(x, "fp64"), -2, 2),
}
SMOOTH_UNARY = ["square", "reciprocal", "sqrt", "rsqrt", "exp", "exp2", "expm1", "log", "log1p",
                "log2", "log10", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
                "tanh", "asinh", "acosh", "atanh", "erf", "sigmoid", "pow_scalar",
                "rpow_scalar", "rdiv_scalar"]


# The per-op hypothesis sweeps run in full on the CPU and for a representative subset of ops
# on each other device (helpers.per_device).
@pytest.mark.parametrize("name, device", per_device(sorted(UNARY), {
    "exp", "log", "sqrt", "tanh", "sigmoid", "abs", "clip", "pow_scalar", "round"}))
@given(shape=shapes(max_side=4), seed=SEED)
def test_unary_grad(name, device, shape, seed):
    fn, lo, hi = UNARY[name]
    rng = np.random.default_rng(seed)
    check_grad(fn, _u(rng, shape, lo, hi), seed=seed, device=device)


# name -> (function, x range, y range)
BINARY = {
    "add": (ts.add, (-2, 2), (-2, 2)), "subtract": (ts.subtract, (-2, 2), (-2, 2)),
    "multiply": (ts.multiply, (-2, 2), (-2, 2)), "divide": (ts.divide, (-2, 2), (0.5, 2)),
    "pow": (ts.pow, (0.3, 2), (-2, 2)), "maximum": (ts.maximum, (-2, 2), (-2, 2)),
    "minimum": (ts.minimum, (-2, 2), (-2, 2)), "atan2": (ts.atan2, (-2, 2), (0.3, 2)),
    "hypot": (ts.hypot, (0.3, 2), (-2, -0.3)), "copysign": (ts.copysign, (0.3, 2), (-2, 2)),
    "logaddexp": (ts.logaddexp, (-2, 2), (-2, 2)),
    "remainder": (ts.remainder, (0.1, 0.9), (1.1, 2)),
    "floor_divide": (ts.floor_divide, (0.1, 0.9), (1.1, 2)),
    "matmul_outer": (ts.outer, (-2, 2), (-2, 2)),
}
SMOOTH_BINARY = ["multiply", "divide", "pow", "atan2", "hypot", "logaddexp"]


@pytest.mark.parametrize("name, device", per_device(sorted(BINARY), {
    "add", "multiply", "divide", "pow", "maximum", "atan2", "matmul_outer"}))
@given(data=st.data(), seed=SEED)
def test_binary_grad_broadcasting(name, device, data, seed):
    fn, xr, yr = BINARY[name]
    if name == "matmul_outer":
        sa, sb = (data.draw(st.integers(1, 4)),), (data.draw(st.integers(1, 4)),)
    else:
        (sa, sb), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3,
                                                                  max_side=3))
    rng = np.random.default_rng(seed)
    check_grad(fn, _u(rng, sa, *xr), _u(rng, sb, *yr), seed=seed, device=device)


@pytest.mark.parametrize("device", DEVICES)
@given(data=st.data(), seed=SEED)
def test_where_grad(data, seed, device):
    (sc, sa, sb), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3,
                                                                  max_side=3))
    rng = np.random.default_rng(seed)
    cond = ts.asarray(rng.random(sc) < 0.5, device=device)
    check_grad(lambda a, b: ts.where(cond, a, b), _u(rng, sa, -2, 2), _u(rng, sb, -2, 2),
               seed=seed, device=device)
    check_grad(lambda a: ts.where(cond, a, 0.5), _u(rng, sa, -2, 2), seed=seed, device=device)


@st.composite
def axis_case(draw, min_dims=1):
    shape = draw(shapes(min_dims=min_dims, max_side=4))
    nd = len(shape)
    axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                          st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd,
                                   unique=True).map(tuple)))
    return shape, axis, draw(st.booleans())


REDUCTIONS = {
    "sum": (lambda x, a, k: ts.sum(x, axis=a, keepdims=k), -2, 2),
    "mean": (lambda x, a, k: ts.mean(x, axis=a, keepdims=k), -2, 2),
    "prod": (lambda x, a, k: ts.prod(x, axis=a, keepdims=k), 0.5, 1.5),
    "prod_signed": (lambda x, a, k: ts.prod(x, axis=a, keepdims=k), -1.5, 1.5),
    "var": (lambda x, a, k: ts.var(x, axis=a, keepdims=k), -2, 2),
    "var_corrected": (lambda x, a, k: ts.var(x, axis=a, keepdims=k, correction=1), -2, 2),
    "std": (lambda x, a, k: ts.std(x, axis=a, keepdims=k), -2, 2),
    "max": (lambda x, a, k: ts.max(x, axis=a, keepdims=k), -2, 2),
    "min": (lambda x, a, k: ts.min(x, axis=a, keepdims=k), -2, 2),
    "logsumexp": (lambda x, a, k: ts.logsumexp(x, axis=a, keepdims=k), -2, 2),
}


@pytest.mark.parametrize("name, device", per_device(sorted(REDUCTIONS), {
    "sum", "mean", "prod_signed", "var", "max", "logsumexp"}))
@given(case=axis_case(), seed=SEED)
def test_reduction_grad(name, device, case, seed):
    shape, axis, keepdims = case
    fn, lo, hi = REDUCTIONS[name]
    n = int(np.prod([shape[a] for a in (range(len(shape)) if axis is None else
                                        (axis if isinstance(axis, tuple) else (axis,)))]))
    if name == "var_corrected" and n < 2:
        return  # correction=1 over one element divides by zero
    if name == "std" and n < 2:
        return  # std of one element is 0: not differentiable there
    rng = np.random.default_rng(seed)
    check_grad(lambda x: fn(x, axis, keepdims), _u(rng, shape, lo, hi), seed=seed, device=device)


@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes(min_dims=1, max_side=4), seed=SEED, include=st.booleans(), data=st.data())
def test_cumulative_sum_grad(shape, seed, include, data, device):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(seed)
    check_grad(lambda x: ts.cumulative_sum(x, axis=axis, include_initial=include),
               _u(rng, shape, -2, 2), seed=seed, device=device)


def test_prod_grad_with_zeros(device):
    # one zero in a slice: only it gets a gradient (the product of the others)
    a = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]])
    x = ts.asarray(a, dtype="fp64", requires_grad=True)
    ts.sum(ts.prod(x, axis=1)).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 6, 0], [0, 0, 0], [8, 4, 2]])


def test_max_grad_splits_ties(device):
    x = ts.asarray([1.0, 3.0, 3.0, 2.0], dtype="fp64", requires_grad=True)
    ts.max(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0.5, 0.5, 0])
    y = ts.asarray([1.0, 2.0], dtype="fp64", requires_grad=True)
    z = ts.asarray([1.0, 1.0], dtype="fp64", requires_grad=True)
    ts.sum(ts.maximum(y, z)).backward()
    np.testing.assert_allclose(y.grad.numpy(), [0.5, 1.0])
    np.testing.assert_allclose(z.grad.numpy(), [0.5, 0.0])


def test_std_grad_of_constant_slice_is_zero(device):
    # sqrt's adjoint at 0 is 0 * inf = NaN; PyTorch (and tessera) give 0
    x = ts.asarray(np.ones((3, 2)), dtype="fp64", requires_grad=True)
    ts.sum(ts.std(x, axis=0)).backward()
    assert x.grad.tolist() == [[0.0, 0.0]] * 3


def test_abs_grad_at_zero_is_zero(device):
    x = ts.asarray([0.0, -1.0], dtype="fp64", requires_grad=True)
    ts.sum(ts.abs(x)).backward()
    assert x.grad.tolist() == [0.0, -1.0]


def test_pow_grad_at_zero_base(device):
    x = ts.asarray([0.0, 2.0], dtype="fp64", requires_grad=True)
    y = ts.asarray([2.0, 3.0], dtype="fp64", requires_grad=True)
    ts.sum(ts.pow(x, y)).backward()
    assert np.all(np.isfinite(y.grad.numpy()))
    np.testing.assert_allclose(y.grad.numpy(), [0.0, 8 * np.log(2)])
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 12.0])


# ---- movement and indexing -----------------------------------------------------
MOVEMENT = {
    "reshape": (lambda x: ts.reshape(x, (-1,)), (2, 3, 4)),
    "reshape_view": (lambda x: x.reshape(4, 6), (2, 3, 4)),
    "permute_dims": (lambda x: ts.permute_dims(x, (2, 0, 1)), (2, 3, 4)),
    "moveaxis": (lambda x: ts.moveaxis(x, 0, -1), (2, 3, 4)),
    "mT": (lambda x: x.mT, (2, 3, 4)),
    "expand_dims": (lambda x: ts.expand_dims(x, 1), (2, 3)),
    "squeeze": (lambda x: ts.squeeze(x, 1), (2, 1, 3)),
    "broadcast_to": (lambda x: ts.broadcast_to(x, (4, 2, 3)), (2, 1)),
    "broadcast_arrays": (lambda x: ts.broadcast_arrays(x, ts.ones((3, 1, 2), device=x.device))[0],
                         (1, 2)),
    "flip": (lambda x: ts.flip(x, axis=(0, 2)), (2, 3, 4)),
    "roll": (lambda x: ts.roll(x, 2, axis=1), (2, 3, 4)),
    "roll_flat": (lambda x: ts.roll(x, -5), (2, 3, 4)),
    "copy": (ts.copy, (2, 3)),
    "contiguous_of_T": (lambda x: ts.contiguous(x.mT), (2, 3)),
    "getitem_basic": (lambda x: x[1:, None, ::-2, 1], (3, 5, 2)),
    "getitem_int": (lambda x: x[-1, 2], (3, 5, 2)),
    "getitem_repeated": (lambda x: x[ts.asarray([0, 2, 0, 0], device=x.device)], (3, 5)),
    "getitem_mixed": (lambda x: x[:, ts.asarray([[1, 1], [4, 0]], device=x.device)], (3, 5)),
    "getitem_mask": (lambda x: x[ts.asarray([True, False, True], device=x.device)], (3, 5)),
    "take": (lambda x: ts.take(x, ts.asarray([2, 2, 0], device=x.device), axis=1), (2, 3)),
    "index_put": (lambda x: ts.index_put(x, (slice(None), 1), 0.0), (3, 4)),
    "index_add_scalar": (lambda x: ts.index_add(x, ts.asarray([0, 0], device=x.device), 1.0),
                         (3, 4)),
    "tril": (lambda x: ts.tril(x, 0), (3, 4)),
    "triu": (lambda x: ts.triu(x, 1), (2, 3, 4)),
    "matrix_transpose": (ts.matrix_transpose, (2, 3, 4)),
}


@pytest.mark.parametrize("name", sorted(MOVEMENT))
def test_movement_and_indexing_grad(name, device):
    fn, shape = MOVEMENT[name]
    for seed in range(3):
        check_grad(fn, np.random.default_rng(seed).uniform(-2, 2, shape), seed=seed, device=device)


def test_index_add_and_put_grads_wrt_values(device):
    rng = np.random.default_rng(0)
    idx = ts.asarray([0, 2, 0], device=device)
    check_grad(lambda x, v: ts.index_add(x, idx, v), rng.uniform(-1, 1, (3, 4)),
               rng.uniform(-1, 1, (3, 4)), device=device)
    check_grad(lambda x, v: ts.index_put(x, (slice(None), ts.asarray([1, 3], device=device)), v),
               rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (3, 2)), device=device)


def test_setitem_on_non_leaf_grad(device):
    rng = np.random.default_rng(0)

    def f(x, v):
        y = x * 2.0
        y[1:3] = v * 3.0          # overwrites part of y: x gets no gradient there
        y[0, ts.asarray([0, 2], device=device)] = ts.exp(v[0, :2])
        return y * y
    check_grad(f, rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (2, 3)), device=device)


@st.composite
def matmul_shapes(draw):
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    ba = tuple(d if draw(st.booleans()) else 1 for d in batch)
    bb = tuple(d if draw(st.booleans()) else 1 for d in batch)[draw(st.integers(0, len(batch))):]
    sa = (k,) if draw(st.integers(0, 4)) == 0 else ba + (m, k)
    sb = (k,) if draw(st.integers(0, 4)) == 0 else bb + (k, n)
    return sa, sb


@pytest.mark.parametrize("device", DEVICES)
@given(shapes_=matmul_shapes(), seed=SEED)
def test_matmul_grad(shapes_, seed, device):
    sa, sb = shapes_
    rng = np.random.default_rng(seed)
    check_grad(ts.matmul, _u(rng, sa, -2, 2), _u(rng, sb, -2, 2), seed=seed, device=device)


def test_linalg_composites_grad(device):
    rng = np.random.default_rng(0)
    check_grad(lambda a, b: ts.tensordot(a, b, axes=2), rng.uniform(-1, 1, (2, 3, 4)),
               rng.uniform(-1, 1, (3, 4, 2)))
    check_grad(lambda a, b: ts.tensordot(a, b, axes=([0], [1])), rng.uniform(-1, 1, (3, 2)),
               rng.uniform(-1, 1, (4, 3)))
    check_grad(ts.vecdot, rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4,)))
    check_grad(ts.linear, rng.uniform(-1, 1, (2, 5, 3)), rng.uniform(-1, 1, (4, 3)),
               rng.uniform(-1, 1, (4,)))


# ---- second derivatives -------------------------------------------------------
def grad_of(f):
    """x -> d(sum f(x))/dx, differentiable again when x requires grad (it is
    built with create_graph=True); plain values when x does not (the finite
    difference passes of check_grad run under no_grad)."""
    def g(*xs):
        if not any(x.requires_grad for x in xs):
            with ts.enable_grad():
                xs = [ts.asarray(x, requires_grad=True) for x in xs]
                return grad(ts.sum(f(*xs)), xs[0])
        return grad(ts.sum(f(*xs)), xs[0], create_graph=True)
    return g


@pytest.mark.parametrize("name, device", per_device(SMOOTH_UNARY, {
    "exp", "log", "sqrt", "tanh", "sigmoid", "erf", "rdiv_scalar"}))
@given(shape=shapes(max_dims=2, max_side=3), seed=SEED)
def test_unary_grad_of_grad(name, device, shape, seed):
    fn, lo, hi = UNARY[name]
    rng = np.random.default_rng(seed)
    check_grad(grad_of(fn), _u(rng, shape, lo, hi), seed=seed, rtol=1e-4, atol=1e-6,
               device=device)


@pytest.mark.parametrize("name, device", per_device(SMOOTH_BINARY, {"multiply", "divide", "pow"}))
@given(data=st.data(), seed=SEED)
def test_binary_grad_of_grad(name, device, data, seed):
    fn, xr, yr = BINARY[name]
    (sa, sb), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2,
                                                              max_side=3))
    rng = np.random.default_rng(seed)
    a, b = _u(rng, sa, *xr), _u(rng, sb, *yr)
    # d/dx of the gradient wrt x, and the mixed term d/dy of the gradient wrt x
    check_grad(grad_of(fn), a, b, seed=seed, rtol=1e-4, atol=1e-6, device=device)
    check_grad(grad_of(lambda y, x: fn(x, y)), b, a, seed=seed, rtol=1e-4, atol=1e-6,
               device=device)


@pytest.mark.parametrize("name,fn,shape", [
    ("logsumexp", lambda x: ts.logsumexp(x, axis=-1), (3, 4)),
    ("var", lambda x: ts.var(x, axis=0), (3, 4)),
    ("std", lambda x: ts.std(x), (5,)),
    ("mean_of_square", lambda x: ts.mean(x * x, axis=1, keepdims=True), (2, 3)),
    ("prod", lambda x: ts.prod(x, axis=1), (2, 3)),
    ("matmul_self", lambda x: ts.matmul(x, x.mT), (3, 2)),
    ("getitem", lambda x: ts.exp(x[ts.asarray([0, 0, 1], device=x.device)]), (2, 3)),
    ("cumulative_sum", lambda x: ts.cumulative_sum(x * x, axis=1), (2, 3)),
])
def test_composite_grad_of_grad(name, fn, shape, device):
    for seed in range(2):
        a = np.random.default_rng(seed).uniform(0.5, 1.5, shape)
        check_grad(grad_of(fn), a, seed=seed, rtol=1e-4, atol=1e-6, device=device)


def test_third_derivative(device):
    x = ts.asarray([0.3, -0.7], dtype="fp64", requires_grad=True)
    g1 = grad(ts.sum(ts.sin(x)), x, create_graph=True)
    g2 = grad(ts.sum(g1), x, create_graph=True)
    g3 = grad(ts.sum(g2), x)
    np.testing.assert_allclose(g3.numpy(), -np.cos([0.3, -0.7]), rtol=1e-12)
