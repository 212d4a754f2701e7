"""Which CuPy the CUDA backend is given: the installed CuPy, or tessera's simulated
one (`tessera.sim`) when `TESSERA_CUDA_SIM` asks for it.

This is the one place that decides; the CUDA backend, the launchers, the
kernel loader, the fusion runtime and interop all reach CuPy through `cupy()`
and `cupyx()` and never ask which they got. Both are resolved lazily, so
`import tessera` never imports CuPy.
"""
from __future__ import annotations

_modules = None


def _resolve():
    global _modules
    if _modules is None:
        from .. import sim
        platform = sim.requested()
        if platform is not None:
            _modules = sim.modules(platform)
        else:
            import cupy as _cupy
            import cupyx as _cupyx
            _modules = (_cupy, _cupyx)
    return _modules


def cupy():
    """The CuPy module (raises ImportError where CuPy is not installed)."""
    return (_modules or _resolve())[0]


def cupyx():
    return (_modules or _resolve())[1]


def is_cupy_array(x) -> bool:
    """Whether `x` is an array of the CuPy the backend is handed (or, before one is,
    of an installed CuPy the user imported), without importing CuPy."""
    if _modules is not None and isinstance(x, _modules[0].ndarray):
        return True
    return type(x).__module__.split(".")[0] == "cupy"


_on_switch: list = []


def on_switch(callback):
    """Register `callback()` to drop what was cached for the previous CuPy (device
    facts, compiled functions, backends) when `use` hands over another."""
    _on_switch.append(callback)
    return callback


def use(cupy_module, cupyx_module=None):
    """Hand the CUDA backend another CuPy (tests; None: resolve again from the
    environment). Returns the previous pair."""
    global _modules
    prev = _modules
    _modules = (cupy_module, cupyx_module) if cupy_module is not None else None
    for cb in _on_switch:
        cb()
    return prev
