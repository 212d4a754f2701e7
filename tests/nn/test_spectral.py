"""Fourier layers against dense / numpy.fft references, gradients against finite
differences, the spectral mixture of experts against its per-token reference,
and the FNO example reaching its stated test error."""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import tessera as ts
from tests.helpers import assert_close, check_grad

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

RNG = np.random.default_rng(0)


def _dense_1d(x, w, m):
    """Dense DFT matrices, no FFT: Y_k = sum_x x e^{-2 pi i k x / n}, then the
    real inverse sum with weights 1, 2, ..., 2, (1 at Nyquist) over kept modes."""
    n = x.shape[-1]
    k = np.arange(m)
    F = np.exp(-2j * np.pi * np.outer(k, np.arange(n)) / n)        # (m, n)
    Y = np.einsum("bix,kx->bik", x, F)
    Z = np.einsum("bik,iok->bok", Y, w)
    c = np.where((k == 0) | (2 * k == n), 1.0, 2.0)
    G = np.exp(2j * np.pi * np.outer(np.arange(n), k) / n) * c / n  # (n, m)
    return np.einsum("bok,xk->box", Z, G).real


def _np_spectral(x, ws, modes):
    d = len(modes)
    sp = x.shape[2:]
    X = np.fft.rfftn(x, axes=tuple(range(2, 2 + d)))
    out = np.zeros((x.shape[0], ws[0].shape[1]) + sp[:-1] + (sp[-1] // 2 + 1,), dtype=complex)
    for c, W in zip(itertools.product((0, 1), repeat=d - 1), ws):
        key = [slice(None), slice(None)] + [slice(0, m) if ci == 0 else slice(n - m, n)
                                            for ci, m, n in zip(c, modes, sp)] + [slice(0, modes[-1])]
        out[tuple(key)] = np.einsum("bi...,io...->bo...", X[tuple(key)], W)
    return np.fft.irfftn(out, s=sp, axes=tuple(range(2, 2 + d)))


def _weights(conv):
    p = conv.weight_parts.numpy().astype(np.float64)
    return [p[c, 0] + 1j * p[c, 1] for c in range(p.shape[0])]


@pytest.mark.parametrize("n", [8, 9])
def test_spectral_conv1d_against_dense_dft(n):
    conv = ts.nn.SpectralConv1d(2, 3, modes=4, dtype="fp64")
    x = RNG.standard_normal((2, 2, n))
    y = conv(ts.asarray(x))
    assert_close(y, _dense_1d(x, _weights(conv)[0], 4))
    if n == 8:  # Nyquist mode kept
        conv5 = ts.nn.SpectralConv1d(2, 3, modes=5, dtype="fp64")
        assert_close(conv5(ts.asarray(x)), _dense_1d(x, _weights(conv5)[0], 5))


@pytest.mark.parametrize("cls,modes,shape", [(ts.nn.SpectralConv2d, (3, 2), (8, 7)),
                                             (ts.nn.SpectralConv2d, (4, 5), (8, 8)),
                                             (ts.nn.SpectralConv3d, (2, 2, 3), (6, 5, 4))])
def test_spectral_conv_nd_against_numpy_fft(cls, modes, shape):
    conv = cls(3, 2, modes=modes, dtype="fp64")
    x = RNG.standard_normal((2, 3) + shape)
    assert_close(conv(ts.asarray(x)), _np_spectral(x, _weights(conv), modes))


def test_spectral_conv_fp32_and_grad():
    conv = ts.nn.SpectralConv2d(2, 2, modes=(2, 2))
    x = RNG.standard_normal((1, 2, 8, 8))
    assert_close(conv(ts.asarray(x, dtype="fp32")), _np_spectral(x, _weights(conv), (2, 2)),
                 rtol=1e-4, atol=1e-6)
    w0 = RNG.standard_normal((2, 2, 2, 3, 2, 2))
    from tessera.nn.spectral import spectral_conv

    def f(x, w):
        return spectral_conv(x, [ts.make_complex(w[c, 0], w[c, 1]) for c in range(2)], (2, 2))
    check_grad(f, RNG.standard_normal((2, 2, 6, 5)), w0)


def test_spectral_conv_bad_input():
    with pytest.raises(ts.errors.ShapeError, match=r"\[spectral_conv\] modes \(6,\) too many for "
                                                   r"spatial shape \(8,\).*at most 5"):
        ts.nn.SpectralConv1d(1, 1, modes=6)(ts.ones((1, 1, 8)))
    with pytest.raises(ts.errors.ShapeError, match=r"\[SpectralConv2d\] input \(1, 3, 8, 8\)"):
        ts.nn.SpectralConv2d(2, 1, modes=2)(ts.ones((1, 3, 8, 8)))
    with pytest.raises(ts.errors.ShapeError, match=r"\[SpectralConv2d\] modes \(1, 2, 3\)"):
        ts.nn.SpectralConv2d(2, 1, modes=(1, 2, 3))


def test_spectral_moe_matches_reference_and_grad():
    moe = ts.nn.SpectralMoE(16, num_experts=3, k=2, dtype="fp64", generator=ts.random.Generator(0))
    x = RNG.standard_normal((6, 16))
    y = moe(ts.asarray(x)).numpy()
    assert np.abs(y).max() > 1e-3
    np.testing.assert_allclose(y, moe.dense_reference(ts.asarray(x)).numpy(), rtol=1e-10, atol=1e-12)
    # an expert owns its band: a token routed only to expert e has output in band e alone
    moe1 = ts.nn.SpectralMoE(16, num_experts=3, k=1, dtype="fp64", generator=ts.random.Generator(1))
    out = np.fft.rfft(moe1(ts.asarray(x)).numpy())
    e = moe1.route(ts.asarray(x)).experts.numpy()[:, 0]
    for t in range(6):
        keep = np.zeros(9, bool)
        keep[e[t] * 3:(e[t] + 1) * 3] = True
        assert np.abs(out[t, ~keep]).max() < 1e-10
    check_grad(lambda v: moe(v), x)
    with pytest.raises(ts.errors.ShapeError, match=r"\[SpectralMoE\] 9 experts cannot split the 3"):
        ts.nn.SpectralMoE(4, num_experts=9, k=1)


@pytest.mark.slow
@pytest.mark.cpu_only("runs examples/fno_burgers.py in a subprocess, pinned to the CPU")
def test_fno_example_reaches_stated_error():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    env = dict(os.environ, TESSERA_DEVICE="cpu")  # not the subprocess's default (CUDA on a GPU host)
    r = subprocess.run([sys.executable, os.path.join(root, "examples", "fno_burgers.py"), "--quick"],
                       capture_output=True, text=True, timeout=600, cwd=root, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "test error target reached" in r.stdout, r.stdout[-2000:]


def test_spectral_filter_example_custom_op_gradcheck():
    """examples/spectral_filter.py: FFT -> filter -> inverse FFT as op.custom, its
    explicit adjoint checked by op.gradcheck."""
    import importlib.util
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    spec = importlib.util.spec_from_file_location("spectral_filter_example",
                                                  os.path.join(root, "examples", "spectral_filter.py"))
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    x = RNG.standard_normal(64)
    y = ex.spectral_filter(ts.asarray(x, dtype="fp64"))
    np.testing.assert_allclose(y.numpy(), np.fft.irfft(np.fft.rfft(x) * ex.response(64), 64), atol=1e-12)
    assert ts.op.gradcheck(ex.spectral_filter, ts.asarray(x, dtype="fp64")).ok
