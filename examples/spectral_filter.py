"""The seed's `custom_spectral_filter` (section 7.1) in its frequency-domain form:
FFT, a filter applied to the spectrum, inverse FFT -- with tessera.fft.

    y = irfft(rfft(x) * H, n),   H[k] = exp(-(k / k0)^2)   (a Gaussian low-pass)

Because H is real and even, the filter is a symmetric matrix: its adjoint is the
same filter. The example registers the op with `op.custom`, gives it that
adjoint explicitly (instead of differentiating through rfft/irfft), and checks
the adjoint with `op.gradcheck` (finite differences + dot-product test). It
compares with numpy.fft and with autodiff through the FFT adjoints.
(examples/custom_spectral_filter.py is the real-space twin with a CUDA kernel.)

Run: python examples/spectral_filter.py
"""
import numpy as np

import tessera as ts
from tessera import op

N, K0 = 1024, 40.0


def response(n):
    """H[k] for the rfft modes of a length-n signal (the cutoff scales with n)."""
    return np.exp(-(np.arange(n // 2 + 1) / (K0 * n / N)) ** 2)


RESPONSE = response(N)


def _filter(x):
    H = ts.asarray(response(x.shape[-1]), dtype=x.dtype, device=x.device)
    return ts.fft.irfft(ts.fft.rfft(x) * H, n=x.shape[-1])


@op.custom("custom_spectral_filter", signature="(tensor<?xf64>) -> tensor<?xf64>", replace=True)
def spectral_filter(x):
    # FFT -> frequency-domain filter -> inverse FFT
    return _filter(x)


@spectral_filter.adjoint
def _spectral_filter_vjp(g, x):
    # H real and even: the filter matrix is symmetric, so its adjoint is itself
    return spectral_filter(g)


def main():
    rng = np.random.default_rng(0)
    t = np.arange(N)
    signal = np.sin(2 * np.pi * 5 * t / N) + 0.5 * rng.standard_normal(N)
    x = ts.asarray(signal, dtype="fp64", requires_grad=True)
    y = spectral_filter(x)
    ref = np.fft.irfft(np.fft.rfft(signal) * RESPONSE, N)
    print(f"max |tessera - numpy.fft| = {np.abs(y.numpy() - ref).max():.2e}")
    print(f"noise removed: |x - clean| = {np.linalg.norm(signal - np.sin(2 * np.pi * 5 * t / N)):.2f}"
          f" -> |y - clean| = {np.linalg.norm(y.numpy() - np.sin(2 * np.pi * 5 * t / N)):.2f}")
    ts.sum(y * y).backward()
    x2 = ts.asarray(signal, dtype="fp64", requires_grad=True)
    ts.sum(_filter(x2) ** 2).backward()   # autodiff through the FFT adjoints instead
    print(f"explicit adjoint vs FFT autodiff: max diff {np.abs(x.grad.numpy() - x2.grad.numpy()).max():.2e}")
    rep = op.gradcheck(spectral_filter, ts.asarray(signal[:64], dtype="fp64"))
    print(rep, "dot-product test <u, J v> vs <J^T u, v>:", rep.dot)
    assert rep.ok


if __name__ == "__main__":
    main()
