"""tessera's hand-written CPU kernels (`tessera/kernels/cpu/*.c`): compiled once with
the fusion compiler's flags (gcc, -O3 -march=native -fopenmp, no FMA contraction),
cached on disk by content like the generated kernels, and loaded with ctypes.

`library(name)` returns the loaded library of `kernels/cpu/<name>.c` (one compile per
process at most, then a disk hit), or None when there is no C compiler or the
compile fails: callers then keep their NumPy path.
"""
from __future__ import annotations

from pathlib import Path

SOURCES = Path(__file__).resolve().parent.parent / "kernels" / "cpu"

_libs: dict = {}  # (name, prelude) -> CDLL or None


def library(name, prelude="", first_function=None):
    """The CDLL of `kernels/cpu/<name>.c` with `prelude` (e.g. #defines) in front.
    `first_function`: a function the source defines (what the compile cache keys
    its loading on); defaults to `ts_<name>`."""
    key = (name, prelude)
    if key in _libs:
        return _libs[key]
    lib = None
    from ..fusion import compile_c
    if compile_c.compiler() is not None:
        src = prelude + (SOURCES / f"{name}.c").read_text()
        try:
            fn = compile_c.compile_c(src, first_function or f"ts_{name}", ("cpu-native", name))
            lib = fn._tessera_lib
        except (compile_c.CompileError, OSError, AttributeError):
            lib = None
    _libs[key] = lib
    return lib
