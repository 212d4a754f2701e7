"""A simulated GPU: a NumPy-backed stand-in for the part of CuPy tessera uses.

With `TESSERA_CUDA_SIM=1` (or `=hip` for the AMD geometry: 64-wide warps),
the CUDA backend is handed `cupy_api` instead of CuPy, so `cuda` is an
available device on a CPU-only machine and the default one; the launchers,
the kernel loader and the fusion CUDA runtime run unchanged over it, and every
kernel is the real source compiled for the CPU (`emu.h`). Like Numba's CUDA
simulator and Triton's interpreter, it exists so that the GPU code paths run in
every test run; it refuses what CuPy refuses (implicit host conversion,
`.ctypes`, float8 arrays) and what a GPU rejects (launch limits, out-of-bounds
writes, pointers of another device), so it finds the bugs a GPU would.

What stays GPU-only: inline PTX (the int8 `mma.sync` GEMM; the device reports
`tesseraEmulated` so launchers route to the portable kernels), timing, and the
races of a real memory model.
"""
from __future__ import annotations


ACCEPTED = ("1", "cuda", "hip")


def requested() -> str | None:
    """The platform TESSERA_CUDA_SIM asks for ("cuda" or "hip"), or None."""
    from .._config import env_choice
    v = env_choice("TESSERA_CUDA_SIM", "0", ("0",) + ACCEPTED)
    if v == "0":
        return None
    return "cuda" if v == "1" else v


def modules(platform="cuda"):
    """(cupy, cupyx) stand-ins, configured for `platform`."""
    from . import cuda, cupy_api, cupyx_api
    if cuda._state.props[0].platform != platform:
        cuda.configure(platform=platform)
    return cupy_api, cupyx_api
