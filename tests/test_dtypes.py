"""tessera.dtypes: names and aliases, NumPy interop, and type promotion per the
Array API standard (Python scalars weak; bf16 with fp16 gives fp32, as PyTorch)."""
import itertools

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import dtypes as D

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


@pytest.mark.parametrize("spec,expected", [
    ("fp32", D.fp32), ("float32", D.fp32), ("float", D.fp32), ("f4", D.fp32),
    ("fp16", D.fp16), ("half", D.fp16), ("bf16", D.bf16), ("bfloat16", D.bf16),
    ("fp64", D.fp64), ("double", D.fp64), ("int8", D.int8), ("uint8", D.uint8),
    ("int32", D.int32), ("int64", D.int64), ("bool", D.bool_), ("e4m3", D.fp8_e4m3),
    ("float8_e5m2", D.fp8_e5m2), ("complex64", D.complex64),
    (np.float32, D.fp32), (np.dtype("float16"), D.fp16), (np.int16, D.int16),
    (ml_dtypes.bfloat16, D.bf16), (np.dtype(ml_dtypes.float8_e4m3fn), D.fp8_e4m3),
    (float, D.fp32), (int, D.int64), (bool, D.bool_), (complex, D.complex64),
    (D.bf16, D.bf16),
])
def test_get_dtype(spec, expected):
    assert D.get_dtype(spec) is expected


@pytest.mark.parametrize("spec", ["float33", "fp", "Float32", "uint16", np.uint32, np.dtype("U3"),
                                  object()])
def test_unknown_dtype_raises(spec):
    with pytest.raises(ts.DTypeError) as e:
        D.get_dtype(spec)
    assert isinstance(e.value, TypeError)
    assert "accepted" in str(e.value) or "no tessera equivalent" in str(e.value)


def test_unknown_dtype_in_creation_names_the_choices():
    with pytest.raises(ts.DTypeError, match=r"^\[zeros\] unknown dtype 'fp31'.*fp32"):
        ts.zeros((2,), dtype="fp31")


def test_dtype_identity_and_repr():
    assert D.get_dtype("float32") is D.get_dtype("fp32")
    assert ts.float32 is ts.fp32 and ts.bfloat16 is ts.bf16
    assert repr(ts.fp32) == "tessera.fp32" and str(ts.bf16) == "bf16"
    import pickle
    assert pickle.loads(pickle.dumps(ts.bf16)) is ts.bf16


@pytest.mark.parametrize("dt", D.ALL_DTYPES, ids=lambda d: d.name)
def test_storage_matches_itemsize(dt):
    assert dt.np_storage.itemsize == dt.itemsize
    assert dt.bits == 8 * dt.itemsize
    # a NumPy storage dtype maps back to the tessera dtype
    assert D.get_dtype(dt.np_storage) is dt


# ---- promotion --------------------------------------------------------------
# The table from the Array API standard (same-kind promotion) and tessera's
# documented extensions (int with float takes the float, bf16/fp16 -> fp32).
PROMOTION = [
    ("int8", "uint8", "int16"), ("int16", "uint8", "int16"), ("int32", "uint8", "int32"),
    ("int64", "uint8", "int64"), ("int8", "int16", "int16"), ("int8", "int64", "int64"),
    ("int32", "int64", "int64"), ("uint8", "uint8", "uint8"),
    ("fp16", "fp32", "fp32"), ("fp32", "fp64", "fp64"), ("fp16", "fp64", "fp64"),
    ("bf16", "fp16", "fp32"), ("bf16", "fp32", "fp32"), ("bf16", "fp64", "fp64"),
    ("int32", "fp16", "fp16"), ("int64", "fp16", "fp16"), ("uint8", "bf16", "bf16"),
    ("int8", "fp32", "fp32"), ("bool", "int8", "int8"), ("bool", "uint8", "uint8"),
    ("bool", "fp16", "fp16"), ("bool", "bool", "bool"), ("fp8_e4m3", "fp16", "fp16"),
    ("fp8_e4m3", "fp8_e5m2", "fp16"), ("fp8_e5m2", "fp32", "fp32"),
    ("complex64", "fp32", "complex64"), ("complex64", "fp64", "complex128"),
    ("complex64", "complex128", "complex128"), ("int32", "complex64", "complex64"),
]


@pytest.mark.parametrize("a,b,expected", PROMOTION)
def test_promotion_table(a, b, expected):
    a, b, e = D.get_dtype(a), D.get_dtype(b), D.get_dtype(expected)
    assert D.promote(a, b) is e
    assert D.promote(b, a) is e
    assert ts.result_type(a, b) is e


@pytest.mark.parametrize("a,b,expected", [p for p in PROMOTION if "complex" not in "".join(p)
                                          and "fp8" not in "".join(p)])
def test_promotion_in_ops(a, b, expected):
    """The table holds for real ops, not just for result_type."""
    x = ts.ones((3,), dtype=a)
    y = ts.ones((2, 1), dtype=b)
    out = x * y
    assert out.dtype.name == expected
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(out.numpy().astype(np.float64), np.ones((2, 3)))


def test_promotion_is_commutative_and_matches_numpy_within_kind():
    std = [D.bool_, D.int8, D.int16, D.int32, D.int64, D.uint8, D.fp16, D.fp32, D.fp64,
           D.complex64, D.complex128]
    for a, b in itertools.product(std, std):
        assert D.promote(a, b) is D.promote(b, a), (a, b)
        kinds = {a.kind, b.kind}
        if kinds & {"f", "c"} and kinds & {"i", "u"}:
            continue  # int with float: the standard leaves it open, NumPy widens
        np_res = np.promote_types(a.np_storage, b.np_storage)
        assert D.promote(a, b) is D.get_dtype(np_res), (a, b, np_res)


def test_result_type_many():
    assert ts.result_type(ts.int8, ts.uint8, ts.fp16) is ts.fp16
    assert ts.result_type(ts.bool_, ts.int8, ts.int32) is ts.int32
    assert ts.result_type(ts.bf16, ts.fp16, ts.fp64) is ts.fp64


# Python scalars are weak: the tensor's dtype wins within a kind.
@pytest.mark.parametrize("dtype,scalar,expected", [
    ("fp16", 2.5, "fp16"), ("bf16", 2.5, "bf16"), ("fp32", 1e10, "fp32"), ("fp64", 2, "fp64"),
    ("int8", 3, "int8"), ("uint8", 3, "uint8"), ("int32", 2.5, "fp32"), ("int8", 2.5, "fp32"),
    ("bool", 1, "int64"), ("bool", True, "bool"), ("bool", 1.5, "fp32"),
    ("fp16", True, "fp16"), ("int16", True, "int16"), ("fp32", 1j, "complex64"),
    ("fp64", 1j, "complex128"),
])
def test_scalars_are_weak(dtype, scalar, expected):
    x = ts.ones((2,), dtype=dtype)
    assert D.scalar_result(x.dtype, scalar).name == expected
    if expected.startswith("complex"):
        return
    for out in (x * scalar, scalar * x, x + scalar):
        assert out.dtype.name == expected, (dtype, scalar, out.dtype)


def test_scalar_ops_values():
    x = ts.asarray([1.0, 2.0, 3.0], dtype="fp16")
    out = x * 2.5
    assert out.dtype is ts.fp16
    np.testing.assert_array_equal(out.numpy(), np.array([2.5, 5.0, 7.5], np.float16))
    b = ts.asarray([True, False])
    np.testing.assert_array_equal((b + 1).numpy(), [2, 1])
    assert (b + 1).dtype is ts.int64


def test_numpy_float64_scalar_is_a_weak_python_float():
    # np.float64 subclasses float (x * np.sqrt(2) is common): weak, like a Python float
    x = ts.asarray([1.0, 2.0], dtype="fp16")
    for out in (x * np.sqrt(2.0), np.float64(2.0) * x, x - np.float64(0.5)):
        assert out.dtype is ts.fp16
    np.testing.assert_array_equal((x * np.float64(2.0)).numpy(), np.array([2.0, 4.0], np.float16))
    assert (ts.asarray([1, 2], dtype="int8") * np.float64(2.5)).dtype is ts.fp32
    # NumPy scalars that do not subclass a Python scalar are 0-d arrays (strong), as NEP 50
    assert (x * np.float32(2.0)).dtype is ts.fp32


def test_int_true_division_gives_default_float():
    a = ts.asarray([1, 2, 3], dtype="int32")
    b = ts.asarray([2, 2, 2], dtype="int32")
    out = a / b
    assert out.dtype is ts.fp32
    np.testing.assert_allclose(out.numpy(), [0.5, 1.0, 1.5])
    assert (ts.asarray([1, 2], dtype="int8") / 2).dtype is ts.fp32


def test_unsupported_scalar_type():
    with pytest.raises(ts.DTypeError):
        D.scalar_result(ts.fp32, "a")


def test_finfo_iinfo_isdtype():
    assert ts.finfo(ts.bf16).bits == 16
    assert float(ts.finfo("fp16").max) == 65504.0
    assert float(ts.finfo(ts.bf16).eps) == 2.0 ** -7
    assert ts.iinfo("int8").min == -128 and ts.iinfo(ts.uint8).max == 255
    with pytest.raises(ts.DTypeError, match=r"\[finfo\]"):
        ts.finfo("int32")
    with pytest.raises(ts.DTypeError, match=r"\[iinfo\]"):
        ts.iinfo("fp32")
    assert ts.isdtype(ts.fp16, "real floating")
    assert ts.isdtype(ts.int8, ("signed integer", "bool"))
    assert not ts.isdtype(ts.uint8, "signed integer")
    assert ts.isdtype(ts.uint8, "integral") and ts.isdtype(ts.complex64, "numeric")
    assert ts.isdtype(ts.bool_, ts.bool_)
    with pytest.raises(ts.DTypeError):
        ts.isdtype(ts.fp32, "floating point")


def test_dtype_kind_flags():
    assert ts.fp32.is_floating and ts.fp32.is_differentiable
    assert ts.int8.is_integer and not ts.int8.is_differentiable
    assert ts.bool_.is_bool and not ts.bool_.is_integer
    assert ts.complex64.is_complex and ts.complex64.is_differentiable
