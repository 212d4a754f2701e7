"""tessera.fft against numpy.fft (every norm, odd and even sizes, padding and
cropping, axes), dtypes and promotion, adjoints against complex finite differences
(real and imaginary directions) and against torch.fft's gradients, bad input."""
import doctest

import numpy as np
import pytest

import tessera as ts
import tessera.fft as tfft
from helpers import assert_close, check_grad_complex

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

NORMS = ("backward", "ortho", "forward")
rng = np.random.default_rng(0)


def crand(*shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def rrand(*shape):
    return rng.standard_normal(shape)


# (name, input maker, kwargs) for the 1-D transforms: even/odd sizes, pad and crop
ONE_D = [(name, n, m) for name in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft")
         for n in (None, 5, 12) for m in (8, 7)]


@pytest.mark.parametrize("name,n,m", ONE_D)
@pytest.mark.parametrize("norm", NORMS)
def test_1d_matches_numpy(name, n, m, norm, device):
    real_in = name in ("rfft", "ihfft")
    a = rrand(3, m) if real_in else crand(3, m)
    out = getattr(tfft, name)(ts.asarray(a, device=device), n=n, axis=-1, norm=norm)
    ref = getattr(np.fft, name)(a, n=n, axis=-1, norm=norm)
    assert_close(out, ref)
    assert out.dtype is (ts.fp64 if name in ("irfft", "hfft") else ts.complex128)


@pytest.mark.parametrize("name", ["fftn", "ifftn", "rfftn", "irfftn"])
@pytest.mark.parametrize("s,axes", [(None, None), (None, (0, 2)), ((4, 5), (2, 0)),
                                    ((3, 6), None), (None, (-1,)), ((7,), (1,))])
@pytest.mark.parametrize("norm", NORMS)
def test_nd_matches_numpy(name, s, axes, norm, device):
    a = rrand(4, 5, 6) if name == "rfftn" else crand(4, 5, 6)
    out = getattr(tfft, name)(ts.asarray(a, device=device), s=s, axes=axes, norm=norm)
    if axes is None and s is not None:  # the Array API (and NumPy's future): the last len(s) axes
        axes = tuple(range(a.ndim - len(s), a.ndim))
    assert_close(out, getattr(np.fft, name)(a, s=s, axes=axes, norm=norm))


@pytest.mark.parametrize("dtype,expect", [("fp32", ts.complex64), ("fp16", ts.complex64),
                                          ("bf16", ts.complex64), ("int32", ts.complex128),
                                          ("bool", ts.complex128), ("fp64", ts.complex128),
                                          ("complex64", ts.complex64)])
def test_dtypes_and_promotion(dtype, expect):
    a = np.arange(8) % 3
    x = ts.asarray(a, dtype=dtype)
    out = tfft.fft(x)
    assert out.dtype is expect
    ref = np.fft.fft(np.real(x.numpy()).astype(np.float64))  # small integers: exact in every dtype
    assert_close(out, ref, rtol=1e-5, atol=1e-5)
    if dtype != "complex64":
        r = tfft.rfft(x)
        assert r.dtype is expect
        assert tfft.irfft(r).dtype is (ts.fp64 if expect is ts.complex128 else ts.fp32)


def test_complex64_precision():
    a = crand(64).astype(np.complex64)
    assert_close(tfft.fft(ts.asarray(a)), np.fft.fft(a.astype(np.complex128)), rtol=1e-4, atol=1e-4)


def test_round_trips():
    a = rrand(3, 10)
    x = ts.asarray(a)
    assert_close(tfft.ifft(tfft.fft(x)), a.astype(complex))
    assert_close(tfft.irfft(tfft.rfft(x), n=10), a)
    assert_close(tfft.irfftn(tfft.rfftn(x), s=(3, 10)), a)
    assert_close(tfft.ihfft(tfft.hfft(ts.asarray(np.fft.ihfft(a)), n=10)), np.fft.ihfft(a))


def test_freq_and_shift(device):
    for n in (1, 4, 7):
        assert_close(tfft.fftfreq(n, d=0.5, dtype="fp64", device=device), np.fft.fftfreq(n, 0.5))
        assert_close(tfft.rfftfreq(n, d=0.5, dtype="fp64", device=device), np.fft.rfftfreq(n, 0.5))
    assert tfft.fftfreq(4).dtype is ts.fp32  # the Array API's default float
    a = rrand(4, 5)
    for axes in (None, 0, (1,), (0, 1)):
        assert_close(tfft.fftshift(ts.asarray(a, device=device), axes=axes), np.fft.fftshift(a, axes))
        assert_close(tfft.ifftshift(ts.asarray(a, device=device), axes=axes), np.fft.ifftshift(a, axes))


# -- adjoints ------------------------------------------------------------------
GRAD_CASES = [
    ("fft", lambda x: tfft.fft(x, n=None), "c", (3, 8)),
    ("fft pad", lambda x: tfft.fft(x, n=11, norm="ortho"), "c", (3, 7)),
    ("fft crop axis0", lambda x: tfft.fft(x, n=2, axis=0, norm="forward"), "c", (3, 7)),
    ("fft real input", lambda x: tfft.fft(x, n=6), "r", (2, 5)),
    ("ifft", lambda x: tfft.ifft(x, n=9), "c", (2, 6)),
    ("fftn", lambda x: tfft.fftn(x, s=(3, 5), axes=(2, 0), norm="ortho"), "c", (4, 2, 6)),
    ("ifftn", lambda x: tfft.ifftn(x, norm="forward"), "c", (3, 4)),
    ("rfft even", lambda x: tfft.rfft(x), "r", (3, 8)),
    ("rfft odd", lambda x: tfft.rfft(x, norm="ortho"), "r", (3, 7)),
    ("rfft pad/crop", lambda x: tfft.rfft(x, n=6, axis=0, norm="forward"), "r", (9, 2)),
    ("irfft even", lambda x: tfft.irfft(x), "c", (3, 5)),
    ("irfft odd", lambda x: tfft.irfft(x, n=7, norm="ortho"), "c", (3, 5)),
    ("irfft crop", lambda x: tfft.irfft(x, n=4, norm="forward"), "c", (2, 6)),
    ("irfft real input", lambda x: tfft.irfft(x, n=8), "r", (2, 5)),
    ("rfftn", lambda x: tfft.rfftn(x, s=(4, 6), axes=(0, 2)), "r", (3, 2, 5)),
    ("rfftn odd", lambda x: tfft.rfftn(x, norm="ortho"), "r", (3, 5)),
    ("irfftn", lambda x: tfft.irfftn(x, s=(4, 6)), "c", (3, 4)),
    ("irfftn axes", lambda x: tfft.irfftn(x, axes=(1, 0), norm="ortho"), "c", (5, 3, 2)),
    ("hfft", lambda x: tfft.hfft(x, n=9), "c", (2, 5)),
    ("ihfft", lambda x: tfft.ihfft(x, norm="ortho"), "r", (2, 6)),
    ("fftshift", lambda x: tfft.fftshift(tfft.fft(x)), "c", (5,)),
    ("ifftshift", lambda x: tfft.ifftshift(x, axes=0), "r", (5, 2)),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_adjoint_finite_differences(case):
    _, fn, kind, shape = case
    a = crand(*shape) if kind == "c" else rrand(*shape)
    check_grad_complex(fn, a)


def test_second_order():
    # the adjoints are written in tessera ops, so gradients differentiate again:
    # sum |rfft x|^2 = x^T Re(R^H R) x for the rfft matrix R, Hessian 2 Re(R^H R)
    a = rrand(6)
    x = ts.asarray(a, requires_grad=True)
    y = ts.sum(ts.abs(tfft.rfft(x)) ** 2)
    (g,) = ts.autograd.grad(y, [x], create_graph=True)
    (h,) = ts.autograd.grad(ts.sum(g * ts.asarray(np.eye(6)[2])), [x])
    R = np.fft.rfft(np.eye(6), axis=0)
    H = 2 * np.real(R.conj().T @ R)
    assert_close(g, H @ a, rtol=1e-9, atol=1e-9)
    assert_close(h, H[:, 2], rtol=1e-9, atol=1e-9)


@pytest.mark.torch
@pytest.mark.parametrize("name,kw,kind,shape", [
    ("fft", {"n": 10, "norm": "ortho"}, "c", (2, 7)), ("ifft", {}, "c", (6,)),
    ("rfft", {"n": 9}, "r", (2, 8)), ("irfft", {"n": 8}, "c", (3, 5)),
    ("irfft", {}, "r", (6,)), ("hfft", {"n": 7}, "c", (4,)), ("ihfft", {}, "r", (7,)),
    ("fftn", {"s": (3, 4)}, "c", (4, 5)), ("rfftn", {"norm": "forward"}, "r", (4, 6)),
    ("irfftn", {"s": (4, 7)}, "c", (4, 5))])
def test_gradients_match_torch(name, kw, kind, shape):
    torch = pytest.importorskip("torch")
    a = crand(*shape) if kind == "c" else rrand(*shape)
    x = ts.asarray(a, requires_grad=True)
    out = getattr(tfft, name)(x, **kw)
    u = crand(*out.shape) if out.dtype.is_complex else rrand(*out.shape)
    out.backward(ts.asarray(u))
    xt = torch.tensor(a, requires_grad=True)
    ot = getattr(torch.fft, name)(xt, **kw)
    assert_close(out, ot.detach().resolve_conj().numpy())
    ot.backward(torch.tensor(u))
    assert_close(x.grad, xt.grad.resolve_conj().numpy())


# -- bad input -----------------------------------------------------------------
def test_errors():
    x = ts.ones((4, 6))
    with pytest.raises(ts.ShapeError, match=r"^\[fft\] axis 2 is out of range"):
        tfft.fft(x, axis=2)
    with pytest.raises(ts.ShapeError, match=r"^\[fft\] invalid number of points 0"):
        tfft.fft(x, n=0)
    with pytest.raises(ts.ShapeError, match=r"^\[irfft\] invalid number of points 0"):
        tfft.irfft(ts.ones((3, 1)))
    with pytest.raises(ts.ShapeError, match=r"^\[fftn\] s=\(3,\) and axes=\(0, 1\)"):
        tfft.fftn(x, s=(3,), axes=(0, 1))
    with pytest.raises(ts.ShapeError, match=r"^\[rfftn\] repeated axis"):
        tfft.rfftn(x, axes=(0, 0))
    with pytest.raises(ts.DTypeError, match=r"^\[rfft\] expects real input, got complex64"):
        tfft.rfft(ts.ones(4, dtype="complex64"))
    with pytest.raises(ValueError, match=r"^\[ifft\] norm must be one of"):
        tfft.ifft(x, norm="unitary")
    with pytest.raises(ts.ShapeError, match=r"^\[fftfreq\] n must be positive"):
        tfft.fftfreq(0)
    with pytest.raises(ts.DTypeError, match=r"^\[rfftfreq\] dtype must be a real floating"):
        tfft.rfftfreq(4, dtype="int32")
    with pytest.raises(ts.ShapeError, match=r"^\[fftshift\] axis 3 is out of range"):
        tfft.fftshift(x, axes=3)


def test_docstrings_run():
    from tessera.fft import _core, helpers, transforms
    for mod in (tfft, transforms, helpers, _core):
        assert doctest.testmod(mod).failed == 0


@pytest.mark.gpu
def test_gpu_matches_cpu():
    a = crand(4, 16)
    x = ts.asarray(a, device="cuda", requires_grad=True)
    y = tfft.rfft(ts.real(tfft.ifft(x)), norm="ortho")
    ts.sum(ts.abs(y)).backward()
    xc = ts.asarray(a, requires_grad=True)
    ts.sum(ts.abs(tfft.rfft(ts.real(tfft.ifft(xc)), norm="ortho"))).backward()
    assert_close(y.to("cpu"), tfft.rfft(ts.real(tfft.ifft(ts.asarray(a))), norm="ortho"))
    assert_close(x.grad.to("cpu"), xc.grad.numpy())
