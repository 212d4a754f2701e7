"""The Tensor API: metadata, dunders (reflected and in place), indexing get/set
with views sharing memory, printing, host conversions and `.to()`."""
import operator
import pickle

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tessera as ts
from helpers import assert_close, to_np64
from core_strategies import LAYOUTS, make, tensors

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def test_metadata():
    x = ts.zeros((2, 3, 4), dtype="fp16")
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.size == 24 and x.numel() == 24
    assert x.dtype is ts.fp16 and x.device is ts.default_device()
    assert x.itemsize == 2 and x.nbytes == 48
    assert x.strides == (12, 4, 1) and x.is_contiguous()
    assert len(x) == 2
    s = ts.asarray(3.0)
    assert s.shape == () and s.ndim == 0 and s.size == 1
    t = ts.zeros((3, 4)).T
    assert t.shape == (4, 3) and t.strides == (1, 4) and not t.is_contiguous()


def test_T_and_mT():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = ts.asarray(a, dtype="fp64")
    assert_close(x.mT, np.swapaxes(a, -1, -2))
    assert_close(x[0].T, a[0].T)
    with pytest.raises(ts.ShapeError, match=r"\[T\]"):
        x.T
    with pytest.raises(ts.ShapeError, match="matrix_transpose"):
        ts.ones((3,)).mT


# ---- dunders ----------------------------------------------------------------
ARITH = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow,
         operator.floordiv, operator.mod]
ARITH_IDS = ["add", "sub", "mul", "truediv", "pow", "floordiv", "mod"]


def _operands(rng, shape_a, shape_b):
    a = rng.uniform(0.5, 2.0, shape_a)
    b = rng.uniform(0.5, 2.0, shape_b)
    return a, b


@pytest.mark.parametrize("op", ARITH, ids=ARITH_IDS)
@given(layout=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**31))
def test_arith_dunders(op, layout, seed):
    rng = np.random.default_rng(seed)
    a, b = _operands(rng, (3, 4), (4,))
    ta, ra = make(a, "fp64", layout)
    tb, rb = make(b, "fp64")
    assert_close(op(ta, tb), op(ra, rb))
    assert_close(op(ta, 1.5), op(ra, 1.5))           # tensor op scalar
    assert_close(op(1.5, ta), op(1.5, ra))           # reflected
    if ta.device.type == "cpu":
        assert_close(op(rb, ta), op(rb, ra))          # numpy op tensor -> reflected on Tensor
        assert isinstance(op(rb, ta), ts.Tensor)
    else:  # host data meets a GPU tensor only through asarray(..., device=): no hidden copy
        with pytest.raises(ts.DeviceError, match="host data"):
            op(rb, ta)


@pytest.mark.parametrize("op", [operator.and_, operator.or_, operator.xor, operator.lshift,
                                operator.rshift], ids=["and", "or", "xor", "lshift", "rshift"])
def test_bitwise_dunders(op):
    a = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
    b = np.array([3, 1, 2], np.int32)
    ta, tb = ts.asarray(a), ts.asarray(b)
    assert_close(op(ta, tb), op(a, b))
    assert_close(op(ta, 2), op(a, 2))
    assert_close(op(2, tb), op(2, b))
    assert op(ta, tb).dtype is ts.int32


def test_bool_dunders_and_invert():
    a = ts.asarray([True, False, True])
    b = ts.asarray([True, True, False])
    assert (a & b).tolist() == [True, False, False]
    assert (a | b).tolist() == [True, True, True]
    assert (a ^ b).tolist() == [False, True, True]
    assert (~a).tolist() == [False, True, False]
    assert (~ts.asarray([0, 5], dtype="int8")).tolist() == [-1, -6]


@pytest.mark.parametrize("op", [operator.eq, operator.ne, operator.lt, operator.le,
                                operator.gt, operator.ge])
def test_comparison_dunders(op):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    b = np.array([2.0, 2.0, 2.0])
    out = op(ts.asarray(a), ts.asarray(b))
    assert out.dtype is ts.bool_
    np.testing.assert_array_equal(out.numpy(), op(a, b))
    np.testing.assert_array_equal(op(ts.asarray(a), 2.0).numpy(), op(a, 2.0))
    np.testing.assert_array_equal(op(2.0, ts.asarray(a)).numpy(), op(2.0, a))


def test_unary_dunders():
    a = np.array([-1.5, 0.0, 2.0])
    x = ts.asarray(a)
    assert_close(-x, -a)
    assert_close(+x, a)
    assert_close(abs(x), np.abs(a))


def test_matmul_dunders():
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(12.0).reshape(3, 4)
    assert_close(ts.asarray(a, dtype="fp64") @ ts.asarray(b, dtype="fp64"), a @ b)
    assert_close(a @ ts.asarray(b, dtype="fp64"), a @ b)  # reflected
    x = ts.asarray(np.eye(3), dtype="fp64")
    x @= ts.asarray(np.full((3, 3), 2.0), dtype="fp64")
    assert_close(x, np.full((3, 3), 2.0))


@pytest.mark.parametrize("op,iop", [
    (operator.add, operator.iadd), (operator.sub, operator.isub), (operator.mul, operator.imul),
    (operator.truediv, operator.itruediv), (operator.pow, operator.ipow),
    (operator.floordiv, operator.ifloordiv), (operator.mod, operator.imod)],
    ids=ARITH_IDS)
def test_inplace_dunders_write_storage(op, iop):
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    base = ts.asarray(a.copy(), dtype="fp64")  # asarray of a float64 array shares its memory
    view = base[0]
    x = base
    x = iop(x, 1.5)
    assert x is base                                 # same object
    assert_close(base, op(a, 1.5))
    assert_close(view, op(a, 1.5)[0])                # views see the write


def test_inplace_int_and_dtype_rules():
    x = ts.asarray([1, 2, 3], dtype="int16")
    x += 2
    assert x.dtype is ts.int16 and x.tolist() == [3, 4, 5]
    x |= 8
    assert x.tolist() == [11, 12, 13]
    with pytest.raises(ts.DTypeError, match="in place"):
        x /= 2  # int16 cannot hold the fp32 quotient
    y = ts.ones((2, 2))
    with pytest.raises(ts.ShapeError):
        y += ts.ones((3, 2, 2))  # result has a different shape


# ---- indexing ----------------------------------------------------------------
A = np.arange(60.0).reshape(3, 4, 5)
BASIC_KEYS = [0, -1, (1, 2), (slice(None), 1), (Ellipsis, 2), (None, 0), (0, None, 1),
              slice(1, None, 2), (slice(None, None, -1), slice(1, 3)), (Ellipsis,), (),
              (1, Ellipsis, None), (slice(-2, None), slice(None, None, 3), -2),
              (2, 3, 4), (slice(5, 10),)]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_basic_getitem(key, layout):
    x, ref = make(A, "fp64", layout)
    out = x[key]
    assert_close(out, ref[key])


class _OnDevice:
    """An index array that becomes a tensor on the test's device when the test runs (one
    made at import would be on the process's default device, CUDA on a GPU host)."""

    def __init__(self, a):
        self.a = np.asarray(a)


@pytest.mark.parametrize("key", [
    [0, 2, 2], (slice(None), [3, 0]), ([0, 1], [1, 2]), (_OnDevice([[0], [2]]), _OnDevice([1, 3])),
    A[..., 0] > 20, (1, A[1, :, 0] > 30), ([-1, 0], Ellipsis, [4, 0]), (slice(None), None, [1, 1]),
    np.array([2, 0]), (0, slice(None), np.array([True, False, True, False, True]))],
    ids=lambda k: "key")
def test_advanced_getitem(key):
    x = ts.asarray(A, dtype="fp64")
    if isinstance(key, tuple):
        key = tuple(ts.asarray(k.a) if isinstance(k, _OnDevice) else k for k in key)
    nkey = key
    if isinstance(key, np.ndarray) and key.dtype == bool:
        key = ts.asarray(key)
    if isinstance(key, tuple):
        nkey = tuple(k.numpy() if isinstance(k, ts.Tensor) else k for k in key)
    assert_close(x[key], A[nkey])


def test_scalar_index_gives_0d_tensor():
    x = ts.asarray([[1, 2], [3, 4]], dtype="int32")
    e = x[1, 0]
    assert isinstance(e, ts.Tensor) and e.shape == () and e.dtype is ts.int32 and int(e) == 3
    e[...] = 9  # a full integer key gives a 0-d view, as in PyTorch
    assert x.tolist() == [[1, 2], [9, 4]]


def test_basic_getitem_is_view_sharing_memory():
    base = ts.asarray(A.copy(), dtype="fp64")
    v = base[1, 1:3]
    v[...] = -1.0                   # writing through the view changes the base
    expect = A.copy()
    expect[1, 1:3] = -1.0
    assert_close(base, expect)
    base[1, 1, 0] = 99.0            # writing the base changes the view
    assert float(v[0, 0]) == 99.0
    t = base.T if base.ndim == 2 else ts.permute_dims(base, (2, 1, 0))
    t[0, 0, 0] = 7.0
    assert float(base[0, 0, 0]) == 7.0
    f = ts.flip(base, axis=0)
    f[0] = 3.0
    assert_close(base[2], np.full((4, 5), 3.0))
    r = ts.reshape(base, (60,))
    r[59] = -5.0
    assert float(base[2, 3, 4]) == -5.0


def test_advanced_getitem_copies():
    base = ts.asarray(A.copy(), dtype="fp64")
    c = base[[0, 1]]
    c[...] = 0.0
    assert_close(base, A)


SET_CASES = [
    (0, 1.0), ((slice(None), 1), np.arange(5.0)), ((Ellipsis, 0), 2.5),
    ((slice(None, None, -1), slice(None), slice(None, None, 2)), np.arange(3.0)),
    ([0, 2], np.arange(20.0).reshape(4, 5)), ((A[..., 0] > 20), -3.0),
    ((slice(None), [1, 3], 0), np.array([8.0, 9.0])), ((1, 2, 3), 42.0),
    ((None, 0), np.ones((1, 4, 5))),
]


@pytest.mark.parametrize("key,value", SET_CASES, ids=lambda v: "case")
@pytest.mark.parametrize("value_kind", ["numpy", "tensor", "tensor_fp32"])
def test_setitem(key, value, value_kind):
    x = ts.asarray(A.copy(), dtype="fp64")
    ref = A.copy()
    tkey = ts.asarray(key) if isinstance(key, np.ndarray) and key.dtype == bool else key
    ref[key] = value
    if value_kind == "numpy" and isinstance(value, np.ndarray) and x.device.type != "cpu":
        with pytest.raises(ts.DeviceError, match="host data"):
            x[tkey] = value  # host data goes to a GPU only through asarray(..., device=)
        value = ts.asarray(value, dtype="fp64", device=x.device)
    if value_kind == "tensor":
        value = ts.asarray(value, dtype="fp64")
    elif value_kind == "tensor_fp32":
        value = ts.asarray(value, dtype="fp32")
    x[tkey] = value
    assert x.dtype is ts.fp64
    assert_close(x, ref)


def test_setitem_bumps_version_and_casts():
    x = ts.zeros((3,), dtype="int8")
    v0 = x._version.v
    x[1] = 7
    assert x._version.v == v0 + 1
    x[0:2] = ts.asarray([1.9, -2.9])  # float into int truncates toward zero, as NumPy
    assert x.tolist() == [1, -2, 0]


# ---- printing -----------------------------------------------------------------
def test_repr_like_numpy_with_dtype_and_device():
    x = ts.asarray([[1.0, 2.5], [3.0, 4.0]])
    r = repr(x)
    dev = str(x.device)
    assert r == ("tensor([[1. , 2.5],\n        [3. , 4. ]], dtype=fp32, device='%s')" % dev), r
    assert repr(ts.asarray([1, 2], dtype="int8")) == f"tensor([1, 2], dtype=int8, device='{dev}')"
    assert "dtype=bf16" in repr(ts.ones((2,), dtype="bf16"))
    y = ts.asarray([1.0], requires_grad=True)
    assert "requires_grad=True" in repr(y)
    assert "grad_fn=<multiply>" in repr(y * 2)
    assert str(ts.asarray([1.0, 2.0])) == "[1., 2.]"
    big = repr(ts.zeros((2000,)))
    assert "..." in big and len(big) < 300


def test_repr_html():
    h = ts.asarray([[1.0, 2.0], [3.0, 4.0]])._repr_html_()
    assert h.startswith("<div>") and "dtype=fp32" in h and f"device={ts.default_device()}" in h
    assert h.count("<tr>") == 2 and h.count("<td>") == 4 and "<td>4.0</td>" in h
    h2 = ts.zeros((30, 30, 30))._repr_html_()
    assert "<pre>" in h2 and "shape=(30, 30, 30)" in h2


def test_format():
    assert f"{ts.asarray(3.14159):.2f}" == "3.14"
    assert f"{ts.asarray([1.0, 2.0])}" == "[1., 2.]"


# ---- host conversions -------------------------------------------------------
@pytest.mark.parametrize("dtype,py", [("fp32", float), ("fp16", float), ("bf16", float),
                                      ("int8", int), ("int64", int), ("bool", bool),
                                      ("fp64", float), ("uint8", int)])
def test_item_and_tolist(dtype, py):
    x = ts.asarray([[1, 0], [1, 1]], dtype=dtype)
    assert type(x[0, 0].item()) is py and x[0, 0].item() == 1
    lst = x.tolist()
    assert lst == [[1, 0], [1, 1]]
    assert all(type(v) is py for row in lst for v in row)
    with pytest.raises(ts.ShapeError, match=r"\[item\]"):
        x.item()


def test_item_rounding_is_kept():
    assert ts.asarray(0.1, dtype="bf16").item() == float(np.float32(0.1).astype("bfloat16"))
    assert ts.asarray([1 / 3], dtype="fp16").tolist() == [float(np.float16(1 / 3))]


def test_python_conversions():
    x = ts.asarray([2.75])
    assert float(x) == 2.75 and int(x) == 2 and bool(x) is True
    assert bool(ts.asarray(0.0)) is False
    assert complex(ts.asarray(1.5)) == 1.5 + 0j
    with pytest.raises(ts.ShapeError, match="ambiguous"):
        bool(ts.ones((2,)))
    with pytest.raises(TypeError):
        len(ts.asarray(1.0))
    with pytest.raises(TypeError):
        iter(ts.asarray(1.0))
    rows = list(ts.asarray(A, dtype="fp64"))
    assert len(rows) == 3 and all(isinstance(r, ts.Tensor) for r in rows)
    assert_close(rows[2], A[2])
    assert [1, 2, 3][ts.asarray(1)] == 2  # __index__
    with pytest.raises(TypeError):
        [1, 2][ts.asarray(1.0)]


def test_numpy_and_array_protocol():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = ts.asarray(a)
    n = x.numpy()
    assert n.dtype == np.float32 and n.shape == (2, 3)
    if x.device.type == "cpu":
        assert np.shares_memory(n, x.data)  # CPU numpy() shares memory (elsewhere: a copy)
    arr = np.asarray(x)
    np.testing.assert_array_equal(arr, a)
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    c = np.array(x, copy=True)
    c[0, 0] = 100
    assert float(x[0, 0]) == 0.0
    assert str(ts.ones((2,), dtype="bf16").numpy().dtype) == "bfloat16"
    y = x * 2
    y.requires_grad  # noqa: B018
    np.testing.assert_array_equal(np.asarray(ts.asarray(a, requires_grad=True) * 2), a * 2)


def test_to_and_cpu():
    x = ts.asarray([1.5, -2.5])
    assert x.to(x.device) is x and x.to(str(x.device)) is x
    if x.device.type == "cpu":
        assert x.to("cpu") is x and x.cpu() is x
    else:
        c = x.cpu()
        assert c.device.type == "cpu" and c.tolist() == [1.5, -2.5] and x.device.type != "cpu"
    y = x.to(dtype="fp16")
    assert y.dtype is ts.fp16 and y.tolist() == [1.5, -2.5]
    z = x.to("cpu", dtype="int32")
    assert z.dtype is ts.int32 and z.tolist() == [1, -2]
    assert x.type("fp64").dtype is ts.fp64
    assert x.to(dtype="fp32", copy=True) is not x


def test_pickle_roundtrip():
    x = ts.asarray([[1.0, 2.0]], dtype="bf16")
    y = pickle.loads(pickle.dumps(x))
    assert y.dtype is ts.bf16 and y.shape == (1, 2) and y.tolist() == [[1.0, 2.0]]


def test_method_aliases():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = ts.asarray(a, dtype="fp64")
    assert_close(x.reshape(4, 6), a.reshape(4, 6))
    assert_close(x.reshape((6, 4)), a.reshape(6, 4))
    assert_close(x.flatten(), a.ravel())
    assert_close(x.permute(2, 0, 1), a.transpose(2, 0, 1))
    assert_close(x.transpose(0, 2), np.swapaxes(a, 0, 2))
    assert_close(x.unsqueeze(1), a[:, None])
    assert_close(x.sum(axis=1), a.sum(1))
    assert_close(x.mean(), a.mean())
    assert_close(x.clip(3, 10), np.clip(a, 3, 10))
    assert_close(x.max(axis=(0, 2), keepdims=True), a.max((0, 2), keepdims=True))
    assert x.argmax().item() == 23


@given(tensors())
def test_values_survive_every_layout(case):
    t, ref, dtype, layout = case
    assert_close(t, ref)
    np.testing.assert_array_equal(to_np64(ts.contiguous(t)), ref)
    if layout != "contiguous" and t.size > 1 and t.ndim >= 1 and max(t.shape) > 1:
        pass  # a layout of a size-1 axis can still be contiguous


def test_in_place_ops_on_0d_results():
    """0-d results hold 0-d arrays, not NumPy scalars: they take in-place writes and
    share memory with their views (y += 1 on `asarray(1.0) * 2` raised TypeError)."""
    y = ts.asarray(1.0) * 2
    y += 1
    assert y.shape == () and float(y) == 3.0
    m = ts.mean(ts.asarray([1.0, 2.0]))
    v = m[...]
    m[...] = 0
    assert float(m) == 0.0 and float(v) == 0.0  # the view sees the write
    g = ts.asarray(3.0, requires_grad=True)
    (g * g).backward()
    g.grad[...] = 0  # zeroing a 0-d gradient in place, as optimizers do
    assert float(g.grad) == 0.0
    s = ts.sum(ts.asarray([1, 2, 3]))
    s -= 6
    assert int(s) == 0 and s.dtype.name == "int64"


def test_in_place_write_into_a_broadcast_view_is_a_clear_error():
    """NumPy's bare "assignment destination is read-only" on the CPU; on a GPU CuPy
    would let every aliased element race. Both say what it is, and what to do."""
    b = ts.broadcast_to(ts.asarray([1.0, 2.0]), (3, 2))
    with pytest.raises(ts.ShapeError, match=r"\[add\] cannot write in place into a broadcast view "
                                            r"\(shape \(3, 2\), strides .*make a copy first"):
        b += 1
    with pytest.raises(ts.ShapeError, match=r"\[setitem\] cannot write in place into a broadcast view"):
        b[0, 0] = 5.0
    c = b.copy()
    c += 1
    assert c.tolist() == [[2.0, 3.0]] * 3
    one = ts.zeros((3, 1))  # a size-1 axis is no broadcast: writable
    one += 1
    assert one.tolist() == [[1.0]] * 3
