"""The CPU backend's row scatter-add (index_add, the gradient of integer-array
indexing, MoE's combine): bit for bit `numpy.add.at`, in rounds of unique rows."""
import numpy as np
import pytest

import tessera as ts
from tessera.backend.common import _rows_scatter

pytestmark = pytest.mark.cpu_only("the CPU backend's row scatter-add kernel")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(50, 3), (7, 4, 5), (300, 64)])
def test_same_bits_as_add_at(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    start = rng.standard_normal(shape).astype(dtype)  # a non-zero target: order matters
    idx = rng.integers(-shape[0], shape[0], 3 * shape[0])
    vals = rng.standard_normal((idx.size,) + shape[1:]).astype(dtype)
    want, got = start.copy(), start.copy()
    np.add.at(want, idx, vals)
    assert _rows_scatter(got, idx, vals, max_repeats=64)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    for key in ((idx,), (idx, slice(None))):  # the keys x[idx] and x[idx, :] give
        again = start.copy()
        assert _rows_scatter(again, key, vals, max_repeats=64)
        np.testing.assert_array_equal(again.view(np.uint8), want.view(np.uint8))


def test_many_rows_into_few():
    """An expert-bias gradient: 4096 rows into 16, hundreds of rounds, same bits."""
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 16, 4096)
    vals = rng.standard_normal((4096, 256)).astype(np.float32)
    want, got = np.zeros((16, 256), np.float32), np.zeros((16, 256), np.float32)
    np.add.at(want, idx, vals)
    assert _rows_scatter(got, idx, vals)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("case", ["1-D target", "scalar values", "float value", "out of range",
                                  "many repeats", "2-tuple index"])
def test_other_cases_are_left_to_add_at(case):
    t = np.zeros((4, 3), np.float32)
    idx, vals = np.array([0, 1, 1]), np.ones((3, 3), np.float32)
    if case == "1-D target":
        t, vals = np.zeros(4, np.float32), np.ones(3, np.float32)
    elif case == "scalar values":
        vals = np.ones((), np.float32)
    elif case == "float value":
        vals = 1.5
    elif case == "out of range":
        idx = np.array([0, 4, 1])
    elif case == "many repeats":
        idx, vals = np.zeros(20, np.int64), np.ones((20, 3), np.float32)
    elif case == "2-tuple index":
        idx = (np.array([0, 1, 1]), np.array([0, 0, 2]))
        vals = np.ones(3, np.float32)
    assert _rows_scatter(t, idx, vals) is False


def test_index_add_and_the_gradient_of_a_gather_use_it():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5))
    idx = np.array([5, 0, 5, 2, 0, 5])
    v = rng.standard_normal((6, 5))
    want = x.copy()
    np.add.at(want, idx, v)
    np.testing.assert_array_equal(ts.index_add(ts.asarray(x), ts.asarray(idx), ts.asarray(v)).numpy(), want)
    w = ts.asarray(x, requires_grad=True)
    w[ts.asarray(idx)].sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.bincount(idx, minlength=6)[:, None] * np.ones(5))
