"""Creation functions against NumPy: dtype inference per the Array API, shapes,
`*_like`, ranges, eye/tril/triu/meshgrid, zero-copy NumPy interop, and the
errors for ragged lists and bad shapes."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tessera as ts
from helpers import assert_close
from core_strategies import FLOATS, INTS, shapes

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


@pytest.mark.parametrize("obj,dtype,shape", [
    (1.5, "fp32", ()), (3, "int64", ()), (True, "bool", ()), (1j, "complex64", ()),
    ([1, 2, 3], "int64", (3,)), ([1, 2.5], "fp32", (2,)), ([[True], [False]], "bool", (2, 1)),
    ([[1, 2], [3, 4]], "int64", (2, 2)), ([], "bool", (0,)), ([[], []], "bool", (2, 0)),
    ([True, 2], "int64", (2,)), ((1.0, 2.0), "fp32", (2,)),
    (np.float32(2.0), "fp32", ()), (np.int8(3), "int8", ()),
    (np.zeros((2, 3), np.float64), "fp64", (2, 3)), (np.zeros(3, np.uint8), "uint8", (3,)),
    (np.zeros(2, np.float16), "fp16", (2,)),
])
def test_asarray_infers_dtype(obj, dtype, shape):
    t = ts.asarray(obj)
    assert t.dtype.name == dtype and t.shape == shape


@given(shape=shapes(max_dims=3), dtype=st.sampled_from(FLOATS + INTS + ("bool",)))
def test_asarray_from_nested_list(shape, dtype):
    rng = np.random.default_rng(0)
    a = rng.integers(-3, 4, size=shape).astype(np.float64) * 0.5
    if dtype in INTS or dtype == "bool":
        a = np.abs(np.trunc(a))
    t = ts.asarray(a.tolist(), dtype=dtype)
    assert t.shape == shape and t.dtype.name == dtype
    expect = a.astype(ts.dtypes.get_dtype(dtype).np_storage)
    np.testing.assert_array_equal(t.numpy(), expect)


def test_asarray_explicit_dtype_rounds_like_numpy():
    v = [0.1, 1 / 3, 1e4]
    for dt in ("fp16", "bf16", "fp32"):
        t = ts.asarray(v, dtype=dt)
        ref = np.asarray(v, np.float64).astype(ts.dtypes.get_dtype(dt).np_storage)
        np.testing.assert_array_equal(t.numpy(), ref)
    assert ts.asarray([1.9, -1.9], dtype="int32").tolist() == [1, -1]  # truncation


def test_asarray_of_tensor():
    x = ts.asarray([1.0, 2.0])
    assert ts.asarray(x) is x
    y = ts.asarray(x, dtype="fp64")
    assert y.dtype is ts.fp64 and y.tolist() == [1.0, 2.0]
    z = ts.asarray(x, copy=True)
    z[0] = 5.0
    assert x.tolist() == [1.0, 2.0]
    g = ts.asarray(x, requires_grad=True)
    assert g.requires_grad and g is not x and not x.requires_grad


def test_asarray_list_of_tensors():
    t = ts.asarray([ts.asarray([1.0, 2.0]), ts.asarray([3.0, 4.0])])
    assert t.shape == (2, 2) and t.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_from_numpy_is_zero_copy():
    a = np.arange(6.0).reshape(2, 3)
    t = ts.from_numpy(a)
    assert t.dtype is ts.fp64
    a[0, 0] = 42.0
    assert float(t[0, 0]) == 42.0
    t[1, 1] = -1.0
    assert a[1, 1] == -1.0


@pytest.mark.parametrize("obj,match", [
    ([[1, 2], [3]], r"\[asarray\] ragged nested sequence at depth 0"),
    ([[1, 2], 3], r"\[asarray\] ragged"),
    ([[[1], [2]], [[1], [2, 3]]], r"ragged nested sequence at depth 1"),
])
def test_ragged_lists_raise(obj, match):
    with pytest.raises(ts.ShapeError, match=match) as e:
        ts.asarray(obj)
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("obj", [["a", "b"], [object()], {"a": 1}])
def test_non_numeric_raises(obj):
    with pytest.raises(ts.DTypeError, match=r"\[asarray\]"):
        ts.asarray(obj)


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty"])
@given(shape=shapes(max_dims=3, min_side=0), dtype=st.sampled_from(FLOATS + INTS + ("bool",)))
def test_zeros_ones_empty(fn, shape, dtype):
    t = getattr(ts, fn)(shape, dtype=dtype)
    assert t.shape == shape and t.dtype.name == dtype and t.device == ts.default_device()
    if fn != "empty":
        np.testing.assert_array_equal(t.numpy(), getattr(np, fn)(shape))


def test_creation_defaults_and_int_shape():
    assert ts.zeros(3).shape == (3,) and ts.zeros(3).dtype is ts.fp32
    assert ts.ones((2, 0)).shape == (2, 0)
    assert ts.full((2,), 7).dtype is ts.int64
    assert ts.full((2,), 7.5).dtype is ts.fp32
    assert ts.full((2,), True).dtype is ts.bool_
    assert ts.full((2, 2), 3.25, dtype="fp16").tolist() == [[3.25, 3.25], [3.25, 3.25]]
    assert ts.zeros((2,), requires_grad=True).requires_grad


@pytest.mark.parametrize("fn", ["zeros_like", "ones_like", "empty_like"])
def test_like(fn):
    x = ts.asarray([[1, 2, 3]], dtype="int16")
    y = getattr(ts, fn)(x)
    assert y.shape == (1, 3) and y.dtype is ts.int16
    z = getattr(ts, fn)(x, dtype="fp16")
    assert z.dtype is ts.fp16
    f = ts.full_like(x, 4)
    assert f.dtype is ts.int16 and f.tolist() == [[4, 4, 4]]


@pytest.mark.parametrize("args,kw", [
    ((5,), {}), ((2, 10, 3), {}), ((0.5, 3.0, 0.25), {}), ((10, 0, -2), {}), ((3,), {"dtype": "fp16"}),
    ((1, 1), {}), ((-3, 3), {"dtype": "int8"}),
])
def test_arange(args, kw):
    t = ts.arange(*args, **kw)
    ref = np.arange(*args)
    assert t.dtype.name == kw.get("dtype", "fp32" if any(isinstance(a, float) for a in args)
                                  else "int64")
    assert_close(t, ref.astype(np.float64) if t.dtype.kind == "f" else ref)


def test_arange_zero_step():
    with pytest.raises(ValueError, match=r"\[arange\] step must not be zero"):
        ts.arange(0, 5, 0)


@pytest.mark.parametrize("start,stop,num,endpoint", [(0, 1, 5, True), (-2, 2, 7, False),
                                                     (1, 1, 1, True), (0, 1, 0, True)])
def test_linspace(start, stop, num, endpoint):
    t = ts.linspace(start, stop, num, endpoint=endpoint)
    assert t.dtype is ts.fp32
    assert_close(t, np.linspace(start, stop, num, endpoint=endpoint))
    with pytest.raises(ts.ShapeError, match=r"\[linspace\]"):
        ts.linspace(0, 1, -1)


@pytest.mark.parametrize("n,m,k", [(3, None, 0), (3, 5, 1), (4, 2, -1), (0, None, 0)])
def test_eye(n, m, k):
    assert_close(ts.eye(n, m, k=k), np.eye(n, m, k=k))
    assert ts.eye(n, m, k=k, dtype="int8").dtype is ts.int8


@pytest.mark.parametrize("k", [-2, -1, 0, 1, 3])
def test_tril_triu(k):
    a = np.arange(1.0, 25.0).reshape(2, 3, 4)
    x = ts.asarray(a, dtype="fp64")
    assert_close(ts.tril(x, k), np.tril(a, k))
    assert_close(ts.triu(x, k), np.triu(a, k))
    assert ts.tril(ts.asarray(a, dtype="int32"), k).dtype is ts.int32


@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_meshgrid(indexing, n):
    arrs = [np.arange(2.0 + i) for i in range(n)]
    outs = ts.meshgrid(*[ts.asarray(a, dtype="fp64") for a in arrs], indexing=indexing)
    refs = np.meshgrid(*arrs, indexing=indexing)
    assert len(outs) == n
    for o, r in zip(outs, refs):
        assert_close(o, r)


@pytest.mark.parametrize("shape", [(2.5, 3), ("a",), (2, None)])
def test_non_integer_shapes_raise(shape):
    with pytest.raises(ts.ShapeError, match=r"\[zeros\] shape must be a tuple of integers"):
        ts.zeros(shape)


def test_negative_shape_raises():
    with pytest.raises(ts.ShapeError, match=r"\[ones\] negative dimension in shape \(2, -1\)"):
        ts.ones((2, -1))


def test_tensor_constructor():
    t = ts.Tensor([[1.0, 2.0]], dtype="fp16", requires_grad=True)
    assert t.shape == (1, 2) and t.dtype is ts.fp16 and t.requires_grad and t.is_leaf
    z = ts.tensor((2, 3), dtype="bf16")
    assert z.shape == (2, 3) and z.dtype is ts.bf16 and float(ts.sum(z)) == 0.0


@pytest.mark.parametrize("bad", ["a", None, [1, 2], object()])
def test_full_rejects_what_is_not_a_scalar(bad):
    # NumPy turned each of these into [True, True] (truthiness of the object)
    with pytest.raises(ts.DTypeError, match=r"\[full\] fill_value must be a bool, int, float or complex "
                                            r"scalar, got \w+"):
        ts.full((2,), bad)


@pytest.mark.parametrize("value, dtype, ref", [(True, "bool", [True, True]), (3, "int64", [3, 3]),
                                               (np.float32(1.5), "fp32", [1.5, 1.5]),
                                               (np.int8(-2), "int64", [-2, -2]), (2j, "complex64", [2j, 2j])])
def test_full_infers_its_dtype_from_the_scalar(value, dtype, ref):
    t = ts.full((2,), value)
    assert t.dtype.name == dtype and t.tolist() == ref
