"""Optional frameworks (PyTorch, JAX, CuPy): imported on first use, with an error
that says what to install when one is missing. `import tessera` never needs them."""
from __future__ import annotations

import importlib

from ..errors import TesseraError

_INSTALL = {
    "torch": ("PyTorch", "pip install torch"),
    "jax": ("JAX", "pip install jax"),
    "cupy": ("CuPy", "pip install cupy-cuda12x (or cupy-rocm-6-0 on ROCm)"),
}


class MissingDependencyError(TesseraError, ImportError):
    """An interop converter was called without the framework it converts to."""


def require(module, op):
    """Import `module` ("torch", "jax", "jax.numpy", "cupy") or raise
    MissingDependencyError naming the op and the install command."""
    try:
        if module == "cupy":  # the CUDA backend's CuPy (the installed one, or tessera.sim's)
            from ..backend.cupy_source import cupy
            return cupy()
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        name, cmd = _INSTALL.get(top, (top, f"pip install {top}"))
        raise MissingDependencyError(f"[{op}] needs {name}, which is not installed "
                                     f"({e}); install it with: {cmd}") from None
