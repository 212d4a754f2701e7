"""`tessera.fft`: the Array API standard's `fft` extension, differentiable.

Transforms (`fft`, `ifft`, `fftn`, `ifftn`, `rfft`, `irfft`, `rfftn`, `irfftn`,
`hfft`, `ihfft`) live in `transforms`, their primitives and adjoints in `_core`, the
frequency grids and shifts in `helpers`. scipy.fft / numpy.fft on the CPU, cupy.fft
(cuFFT) on the GPU. Gradients follow PyTorch's convention for complex tensors.

>>> import tessera as ts
>>> x = ts.asarray([1.0, 2.0, 3.0, 4.0], requires_grad=True)
>>> ts.real(ts.fft.fft(x)).sum().backward()   # sum of Re(X_k) = 4 x[0]
>>> x.grad.tolist()
[4.0, 0.0, 0.0, 0.0]
"""
from .helpers import fftfreq, fftshift, ifftshift, rfftfreq
from .transforms import fft, fftn, hfft, ifft, ifftn, ihfft, irfft, irfftn, rfft, rfftn

__all__ = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft",
           "fftfreq", "rfftfreq", "fftshift", "ifftshift"]
