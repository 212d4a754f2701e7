"""The seed's section 7.1 with a real kernel: `custom_spectral_filter`, a custom
operator with a CUDA/HIP kernel, a CPU body in tessera ops, an adjoint, an MLIR
signature, and its appearance in the Graph IR as `"tessera.op" {name = ...}`.

The filter: a fixed low-pass (windowed-sinc) filter applied to a periodic signal.
Multiplying the spectrum of x by the spectrum H of the taps h is the circular
convolution y[i] = sum_k h[k] x[(i - k) mod n], which is what the kernel computes
directly in real space (NOTE: tessera.fft is being written for issue 10; once it
lands, the CPU body can be `irfft(rfft(x) * H)` and give the same result).
The adjoint of a convolution is the correlation with the same taps (convolution
with the reversed taps), a second custom op with its own kernel, so the filter is
differentiable any number of times.

Run: python examples/custom_spectral_filter.py
"""
import math

import numpy as np

import tessera as ts
from tessera import op

N, TAPS = 1024, 15


def lowpass_taps(taps=TAPS, cutoff=0.125):
    """Windowed-sinc (Hann) low-pass taps, normalized to unit DC gain."""
    k = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(2 * cutoff * k) * (0.5 - 0.5 * np.cos(2 * math.pi * np.arange(taps) / (taps - 1)))
    return (h / h.sum()).astype(np.float32)


H = lowpass_taps()
_CONST = ", ".join(f"{v:.9e}f" for v in H)

# One source, two kernels: the filter (convolution) and its adjoint (correlation).
SOURCE = f"""#include "compat.cuh"
// taps of the low-pass filter, baked in: {TAPS} taps, the same values as the CPU body
__constant__ float TAPS_H[{TAPS}] = {{{_CONST}}};

// y[i] = sum_k h[k] * x[(i - k) mod n]: the circular convolution, i.e. the spectrum
// of x multiplied by the filter's spectrum
extern "C" __global__ void spectral_filter(const float* __restrict__ x, float* __restrict__ y,
                                           long long n) {{
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float acc = 0.0f;
  for (int k = 0; k < {TAPS}; ++k) {{
    long long j = i - k;
    j = ((j % n) + n) % n;   // periodic signal (also correct when n < taps)
    acc += TAPS_H[k] * x[j];
  }}
  y[i] = acc;
}}

// the adjoint: dx[i] = sum_k h[k] * g[(i + k) mod n] (correlation with the taps)
extern "C" __global__ void spectral_filter_adjoint(const float* __restrict__ g,
                                                   float* __restrict__ dx, long long n) {{
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float acc = 0.0f;
  for (int k = 0; k < {TAPS}; ++k) acc += TAPS_H[k] * g[(i + k) % n];
  dx[i] = acc;
}}
"""

SIGNATURE = f"(tensor<{N}xf32>) -> tensor<{N}xf32>"


def _conv(x, sign):
    """The CPU body in tessera ops: sum_k h[k] * roll(x, sign * k)."""
    y = float(H[0]) * x
    for k in range(1, TAPS):
        y = y + float(H[k]) * ts.roll(x, sign * k)
    return y


spectral_filter_adjoint = op.custom("custom_spectral_filter_adjoint", source=SOURCE,
                                    kernel="spectral_filter_adjoint", block=256,
                                    signature=SIGNATURE, replace=True)


@spectral_filter_adjoint.cpu
def _adjoint_cpu(g):
    return _conv(g, -1)


# ---- the seed's snippet, with the kernel filled in ----------------------------------
@op.custom("custom_spectral_filter", source=SOURCE, kernel="spectral_filter", block=256,
           signature=SIGNATURE, replace=True)
def spectral_filter(x):
    # Custom CUDA/ROCm kernel called here (on a GPU); on the CPU this body runs
    x_filtered = _conv(x, +1)
    return x_filtered


@spectral_filter.adjoint
def _filter_vjp(g, x):
    return spectral_filter_adjoint(g)


@spectral_filter_adjoint.adjoint
def _adjoint_vjp(g, x):
    return spectral_filter(g)


def main():
    rng = np.random.default_rng(0)
    t = np.arange(N)
    signal = np.sin(2 * np.pi * 4 * t / N) + 0.5 * rng.standard_normal(N)
    x = ts.asarray(signal.astype(np.float32), requires_grad=True)
    y = spectral_filter(x)
    # reference: the same filter through NumPy's FFT (spectrum multiplication)
    h_pad = np.zeros(N)
    h_pad[:TAPS] = H
    ref = np.fft.irfft(np.fft.rfft(signal) * np.fft.rfft(h_pad), N)
    print("max |tessera - numpy fft| =", float(np.max(np.abs(y.numpy() - ref))))
    (y * y).sum().backward()
    print("gradient norm:", float(np.linalg.norm(x.grad.numpy())))
    print(op.gradcheck(spectral_filter, ts.asarray(signal.astype(np.float32))))
    g = ts.graph.capture(lambda v: spectral_filter(v).sum(), x.detach())
    ir = g.dump_ir(level="graph", print_=False)
    print("\n".join(line for line in ir.splitlines() if "tessera.op" in line))


if __name__ == "__main__":
    main()
