"""Complex dtypes through the core: parts (real/imag/conj/angle/make_complex/polar)
against NumPy, elementwise ops and promotion, gradients under PyTorch's convention
against complex finite differences and torch, errors for order-based ops."""
import doctest

import numpy as np
import pytest

import tessera as ts
from helpers import assert_close, check_grad_complex

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

rng = np.random.default_rng(3)


def crand(*shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


@pytest.mark.parametrize("dtype,part", [("complex64", ts.fp32), ("complex128", ts.fp64)])
def test_parts_match_numpy(dtype, part, device):
    a = crand(3, 4)
    x = ts.asarray(a, dtype=dtype, device=device)
    a = a.astype(x.dtype.np_storage)
    for fn, ref in ((ts.real, np.real), (ts.imag, np.imag), (ts.angle, np.angle),
                    (ts.abs, np.abs)):
        out = fn(x)
        assert out.dtype is part
        assert_close(out, ref(a))
    assert ts.conj(x).dtype is x.dtype
    assert_close(ts.conj(x), np.conj(a))
    assert_close(x.real, a.real)
    assert_close(x.imag, a.imag)
    assert_close(x.conj(), np.conj(a))


def test_parts_of_real_tensors():
    r = ts.asarray([-1.5, 0.0, 2.0])
    assert ts.real(r) is r and ts.conj(r) is r  # the Array API: conj of real is x
    assert_close(ts.imag(r), np.zeros(3))
    assert_close(ts.angle(r), np.angle([-1.5, 0.0, 2.0]))
    assert ts.angle(ts.asarray([-1, 2])).dtype is ts.fp32


def test_make_complex_and_polar():
    re, im = rng.standard_normal((2, 3)), rng.standard_normal(3)
    z = ts.make_complex(ts.asarray(re, dtype="fp64"), ts.asarray(im, dtype="fp64"))
    assert z.dtype is ts.complex128
    assert_close(z, re + 1j * im)
    assert ts.make_complex(ts.ones(2), ts.ones(2, dtype="fp16")).dtype is ts.complex64
    r, t = np.abs(re), im
    assert_close(ts.polar(ts.asarray(r, dtype="fp64"), ts.asarray(t, dtype="fp64")),
                 r * np.exp(1j * t))


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sinh",
                                  "square", "reciprocal", "negative", "expm1", "log1p",
                                  "arcsin", "arctanh", "sign"])
def test_unary_values(name, device):
    a = crand(7)
    ts_name = {"arcsin": "asin", "arctanh": "atanh"}.get(name, name)
    out = getattr(ts, ts_name)(ts.asarray(a, device=device))
    assert out.dtype is ts.complex128
    assert_close(out, getattr(np, name)(a))


def test_promotion_and_scalars():
    c64 = ts.ones(2, dtype="complex64")
    assert (c64 + ts.ones(2, dtype="fp64")).dtype is ts.complex128  # fp64 widens complex64
    assert (c64 + ts.ones(2, dtype="fp32")).dtype is ts.complex64
    assert (c64 + ts.ones(2, dtype="int64")).dtype is ts.complex64
    assert (ts.ones(2) * 1j).dtype is ts.complex64  # a complex scalar is weak
    assert (ts.ones(2, dtype="fp64") * 1j).dtype is ts.complex128
    assert_close(ts.ones(2) * (1 + 2j), np.array([1 + 2j, 1 + 2j]))
    assert ts.zeros((2,), dtype="complex128").dtype is ts.complex128


def test_big_complex_stays_eager_and_correct():
    # above the CPU fusion threshold: complex must not enter the lazy buffer
    a = crand(50_000)
    x = ts.asarray(a)
    y = ts.exp(x) * 2 + ts.abs(x)
    assert y._buf is not None
    assert_close(y, np.exp(a) * 2 + np.abs(a))
    f = ts.asarray(rng.standard_normal(50_000)) * 3  # a lazy real operand meets complex
    assert_close(f * x, np.asarray(f.numpy()) * a)
    assert_close(ts.astype(f, "complex128"), f.numpy().astype(complex))


HOLO = ["exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "square",
        "reciprocal", "rsqrt", "negative", "expm1", "log1p", "log2", "log10", "asin", "acos",
        "atan", "asinh", "acosh", "atanh", "exp2"]


@pytest.mark.parametrize("name", HOLO + ["abs", "sign", "real", "imag", "conj", "angle"])
def test_unary_gradients(name):
    check_grad_complex(getattr(ts, name), crand(5))


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "pow"])
@pytest.mark.parametrize("kinds", ["cc", "cr", "rc"])
def test_binary_gradients(name, kinds):
    a = crand(4) if kinds[0] == "c" else rng.standard_normal(4)
    b = crand(4) if kinds[1] == "c" else rng.standard_normal(4)
    check_grad_complex(getattr(ts, name), a, b)


def test_composite_gradients():
    a, b = crand(3, 4), crand(4, 2)
    check_grad_complex(lambda x: x * (2 - 3j) + (1 + 1j) ** x, a)
    check_grad_complex(ts.matmul, a, b)
    check_grad_complex(ts.matmul, a, rng.standard_normal((4, 2)))
    check_grad_complex(lambda x: ts.prod(x, axis=0), a)
    check_grad_complex(lambda x, y: ts.vecdot(x, y), a, crand(3, 4))
    check_grad_complex(lambda x: ts.sum(ts.abs(x) ** 2), a)
    check_grad_complex(lambda x: ts.mean(x * ts.conj(x)), a)
    check_grad_complex(ts.make_complex, rng.standard_normal((2, 3)), rng.standard_normal(3))
    check_grad_complex(ts.polar, np.abs(rng.standard_normal(3)) + 0.1, rng.standard_normal(3))
    check_grad_complex(lambda x: ts.astype(x, "fp64"), a)  # keeps the real part
    check_grad_complex(lambda x: ts.astype(x, "complex128") * 1j, rng.standard_normal(3))


def test_gradient_at_zero_is_zero():
    z = ts.asarray(np.array([0j, 1 + 1j]), requires_grad=True)
    (ts.sum(ts.angle(z)) + ts.sum(ts.real(ts.sign(z)))).backward()
    assert np.all(np.isfinite(z.grad.numpy())) and z.grad.numpy()[0] == 0


@pytest.mark.torch
@pytest.mark.parametrize("expr", [
    lambda m, x: m.exp(x) * m.sin(x), lambda m, x: m.abs(x) * x,
    lambda m, x: m.sqrt(x) / (x + 2), lambda m, x: m.angle(x) + m.real(x * x.conj()),
    lambda m, x: m.sgn(x) if m.__name__ == "torch" else m.sign(x),
    lambda m, x: x ** (1.5 - 0.5j), lambda m, x: m.imag(m.tanh(x)) * x])
def test_gradients_match_torch(expr):
    torch = pytest.importorskip("torch")
    a = crand(6)
    u = crand(6)
    x = ts.asarray(a, requires_grad=True)
    out = expr(ts, x)
    u = u if out.dtype.is_complex else u.real
    out.backward(ts.asarray(u, dtype=out.dtype))
    xt = torch.tensor(a, requires_grad=True)
    ot = expr(torch, xt)
    assert_close(out, ot.detach().resolve_conj().numpy())
    ot.backward(torch.tensor(u, dtype=ot.dtype))
    assert_close(x.grad, xt.grad.resolve_conj().numpy())


@pytest.mark.parametrize("name", ["maximum", "minimum", "less", "greater_equal", "remainder",
                                  "floor_divide"])
def test_order_based_ops_refuse_complex(name):
    z = ts.ones(2, dtype="complex64")
    with pytest.raises(ts.DTypeError, match=rf"^\[{name}\] is not defined for complex tensors "
                                            r"\(complex64\)"):
        getattr(ts, name)(z, z)
    with pytest.raises(ts.DTypeError, match=r"^\[floor\] is not defined for complex"):
        ts.floor(z)


def test_bad_input():
    with pytest.raises(ts.DTypeError, match=r"^\[make_complex\] parts must be real, got complex64"):
        ts.make_complex(ts.ones(2, dtype="complex64"), ts.ones(2))
    with pytest.raises(ts.ShapeError, match=r"^\[make_complex\] shapes do not broadcast"):
        ts.make_complex(ts.ones(2), ts.ones(3))
    with pytest.raises(ts.DTypeError, match=r"^\[polar\] abs and angle must be real"):
        ts.polar(ts.ones(2), ts.ones(2, dtype="complex64"))
    with pytest.raises(ts.DTypeError, match=r"^\[angle\] is not defined for bool"):
        ts.angle(ts.asarray([True]))


def test_docstrings_run():
    import tessera.ops.complex as mod
    assert doctest.testmod(mod).failed == 0
