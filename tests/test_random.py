"""tessera.random: reproducibility, distribution moments within statistical
tolerance (about 5 standard errors, so a correct generator fails with negligible
probability), ranges, half-precision draws, spawned streams and error paths."""
import subprocess
import sys

import numpy as np
import pytest

import tessera as ts
from tessera.random import Generator, default_generator, manual_seed, rand, randn
from helpers import to_np64

N = 100_000


def _draws(g):
    return [g.normal((3, 4)), g.uniform((5,), -2, 3), g.random((2, 2)),
            g.integers(0, 10, (7,)), g.permutation(9), g.bernoulli(0.3, (6,))]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_same_seed_same_values(device):
    a, b = _draws(Generator(123, device)), _draws(Generator(123, device))
    for x, y in zip(a, b):
        assert x.device == device
        np.testing.assert_array_equal(to_np64(x), to_np64(y))
    c = Generator(124, device).normal((3, 4))
    assert not np.array_equal(to_np64(a[0]), to_np64(c))


def test_manual_seed_and_shortcuts(device):
    manual_seed(7)
    a = randn(2, 3, device=device)
    r = rand((4,), device=device)
    manual_seed(7)
    np.testing.assert_array_equal(randn((2, 3), device=device).numpy(), a.numpy())
    np.testing.assert_array_equal(rand(4, device=device).numpy(), r.numpy())
    assert default_generator(device) is default_generator(device)
    np.testing.assert_array_equal(randn(5, seed=3, device=device).numpy(),
                                  Generator(3, device).normal(5).numpy())
    assert randn(3, seed=1, device=device).tolist() != randn(3, seed=2, device=device).tolist()
    t = randn(2, 2, device=device, requires_grad=True)
    assert t.requires_grad and t.dtype == ts.fp32 and randn(device=device).shape == ()
    assert randn(2, dtype="fp64", device=device).dtype == ts.fp64


def test_normal_moments(device):
    x = to_np64(Generator(0, device).normal((N,), mean=2.0, std=3.0))
    se = 3.0 / np.sqrt(N)
    assert abs(x.mean() - 2.0) < 5 * se
    assert abs(x.std() - 3.0) < 5 * 3.0 / np.sqrt(2 * N)
    assert abs(np.abs((x - 2.0) / 3.0).mean() - np.sqrt(2 / np.pi)) < 0.01  # E|z|


def test_uniform_moments_and_range(device):
    lo, hi = -1.0, 3.0
    x = to_np64(Generator(1, device).uniform((N,), lo, hi))
    assert x.min() >= lo and x.max() < hi
    assert abs(x.mean() - 1.0) < 5 * (hi - lo) / np.sqrt(12 * N)
    assert abs(x.var() - (hi - lo) ** 2 / 12) < 0.03
    hist = np.histogram(x, bins=8, range=(lo, hi))[0] / N
    assert np.all(np.abs(hist - 1 / 8) < 5 * np.sqrt(1 / 8 * 7 / 8 / N))


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_half_precision_draws_are_rounded_fp32(dtype, device):
    x = Generator(2, device).normal((1000,), dtype=dtype)
    ref = Generator(2, device).normal((1000,), dtype="fp32").numpy()
    assert x.dtype == ts.dtypes.get_dtype(dtype)
    np.testing.assert_array_equal(x.numpy(), ref.astype(x.numpy().dtype))
    u = to_np64(Generator(3, device).random((N,), dtype=dtype))
    assert u.min() >= 0 and u.max() < 1  # never rounds up to 1.0
    assert abs(u.mean() - 0.5) < 0.01


def test_integers(device):
    g = Generator(4, device)
    x = g.integers(-3, 5, (N,)).numpy()
    assert x.dtype == np.int64 and x.min() == -3 and x.max() == 4
    assert abs(x.mean() - 0.5) < 0.05
    y = g.integers(6, shape=(1000,), dtype="uint8")
    assert y.dtype == ts.uint8 and set(np.unique(y.numpy())) == set(range(6))
    with pytest.raises(ValueError, match=r"\[integers\] needs low < high"):
        g.integers(5, 5)
    with pytest.raises(ValueError, match=r"does not fit int8"):
        g.integers(0, 1000, dtype="int8")
    with pytest.raises(ts.DTypeError, match=r"\[integers\] dtype must be an integer"):
        g.integers(0, 3, dtype="fp32")


def test_permutation(device):
    g = Generator(5, device)
    p = g.permutation(50).numpy()
    assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(50))
    assert p.tolist() != list(range(50))
    assert g.permutation(0).shape == (0,)
    x = ts.asarray(np.arange(12.0).reshape(6, 2), device=device, requires_grad=True)
    y = g.permutation(x)
    rows = y.numpy()[:, 0] / 2
    assert sorted(rows.tolist()) == list(range(6))
    # the gradient follows the rows
    ts.sum(y * ts.asarray(np.arange(12.0).reshape(6, 2), device=device)).backward()
    np.testing.assert_array_equal(x.grad.numpy()[rows.astype(int)],
                                  np.arange(12.0).reshape(6, 2))
    with pytest.raises(ts.ShapeError, match="0-d"):
        g.permutation(ts.asarray(1.0, device=device))


def test_bernoulli(device):
    g = Generator(6, device)
    b = g.bernoulli(0.25, (N,))
    assert b.dtype == ts.bool_
    assert abs(b.numpy().mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / N)
    assert g.bernoulli(0.0, (10,)).numpy().sum() == 0 and g.bernoulli(1.0, (10,)).numpy().all()
    p = ts.asarray(np.tile([0.1, 0.9], N // 2), device=device)
    m = g.bernoulli(p, dtype="fp32").numpy().reshape(-1, 2).mean(0)
    assert m.dtype == np.float32 and np.all(np.abs(m - [0.1, 0.9]) < 0.01)
    with pytest.raises(ValueError, match=r"\[bernoulli\] p must be in \[0, 1\]"):
        g.bernoulli(1.5, (2,))


def test_spawn_gives_independent_reproducible_streams(device):
    kids = Generator(8, device).spawn(3)
    again = Generator(8, device).spawn(3)
    draws = [k.normal((N // 10,)).numpy() for k in kids]
    for k, d in zip(again, draws):
        np.testing.assert_array_equal(k.normal((N // 10,)).numpy(), d)
    for i in range(3):
        for j in range(i + 1, 3):
            assert abs(np.corrcoef(draws[i], draws[j])[0, 1]) < 5 / np.sqrt(N // 10)


def test_errors(device):
    g = Generator(9, device)
    with pytest.raises(ts.DTypeError, match=r"\[normal\] draws floating-point"):
        g.normal((2,), dtype="int32")
    with pytest.raises(ts.ShapeError, match=r"\[uniform\] negative dimension"):
        g.uniform((2, -1))
    with pytest.raises(ts.ShapeError, match=r"\[randn\] shape must be"):
        randn("a", device=device)
    with pytest.raises(ValueError, match=r"\[uniform\] needs low <= high"):
        g.uniform((2,), 1.0, 0.0)
    with pytest.raises(ValueError, match=r"\[normal\] std must be non-negative"):
        g.normal((2,), std=-1.0)


@pytest.mark.cpu_only("imports tessera.random in a subprocess that has no CuPy")
def test_imports_without_cupy():
    code = ("import sys; sys.modules['cupy'] = None\n"
            "from tessera.random import Generator\n"
            "print(Generator(0, 'cpu').normal(3).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(3,)"
