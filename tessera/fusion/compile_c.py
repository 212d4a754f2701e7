"""Compiling generated C with gcc, loading it with ctypes, and the kernel caches.

Owns the fusion kernels' bookkeeping for both backends: the `KernelInfo`
registry (`explain_kernel`) and compile listeners (`add_compile_listener`), the
disk cache of shared objects under $TESSERA_CACHE_DIR/c/<key>.so (default
~/.cache/tessera; writes are temp file + os.replace, an entry that fails to load
counts as a miss; TESSERA_KEEP_SOURCE=1 keeps <key>.c beside it).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._config import env_choice
from .._listeners import Listeners

# libgomp's wait policy (read once, when the first generated kernel loads it) is
# set at `import tessera`: see tessera/backend/cpu.py, _openmp_defaults.

KERNELS_DIR = Path(__file__).resolve().parent.parent / "kernels"

# No -ffast-math: it would let gcc assume no NaN/Inf and drop signed zeros.
# 512-bit vectors: libmvec's 16-lane variants measured ~20% faster than the 8-lane ones here.
# -fno-math-errno lets libm calls vectorize (via libmvec) and -fno-trapping-math lets
# gcc compute both arms of a select; neither changes any computed value.  FMA
# contraction is off so that a*b+c rounds like NumPy's two separate ops.
CFLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-fopenmp", "-fno-math-errno", "-fno-trapping-math",
          "-ffp-contract=off", "-std=gnu11", "-shared", "-fPIC", "-w"]
LIBS = ["-lmvec", "-lm"]


# ----------------------------------------------------------------- registry and listeners
@dataclass
class KernelInfo:
    """What the profiler and IR dumps show about one compiled fusion kernel."""
    name: str
    key: tuple
    backend: str               # "c" | "cuda"
    source: str
    compile_seconds: float = 0.0
    from_disk: bool = False
    path: str | None = None
    extra: dict = field(default_factory=dict)


_infos: dict = {}
# Events: {"kind": "compile"|"cache_hit"|"disk_hit", "name", "seconds", "backend"}.
_listeners = Listeners()
add_compile_listener = _listeners.add
remove_compile_listener = _listeners.remove


def notify(kind: str, name: str, seconds: float, backend: str):
    if _listeners:
        _listeners.notify({"kind": kind, "name": name, "seconds": seconds, "backend": backend})


def register(info: KernelInfo):
    _infos[info.key] = info
    _infos[info.name] = info


def explain_kernel(key) -> dict:
    """Name, key, source, compile seconds and cache origin of a kernel (by key or name)."""
    info = _infos[key]
    return {"name": info.name, "key": info.key, "backend": info.backend, "source": info.source,
            "compile_seconds": info.compile_seconds, "from_disk": info.from_disk, "path": info.path}


def kernel_infos() -> list:
    return list({id(i): i for i in _infos.values()}.values())


# ----------------------------------------------------------------- compiler
def cache_root() -> Path:
    return Path(os.environ.get("TESSERA_CACHE_DIR") or Path.home() / ".cache" / "tessera")


_cc_id: str | None = None
_cc_lock = threading.Lock()


def compiler() -> str | None:
    """Path of the C compiler ($CC, else gcc/cc on PATH), or None."""
    return shutil.which(os.environ.get("CC") or "gcc") or shutil.which("cc")


def _compiler_id() -> str:
    """Everything besides the source that changes the binary: compiler, flags, CPU, header."""
    global _cc_id
    if _cc_id is None:
        cc = compiler()
        # The compiler's identity without running it (`gcc --version` is a fork+exec,
        # ~15 ms of a warm process's start): resolved path, size and mtime.
        real = os.path.realpath(cc)
        st = os.stat(real)
        ver = f"{real}:{st.st_size}:{st.st_mtime_ns}"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next((ln for ln in f if ln.startswith("flags")), "")
        except OSError:
            cpu = ""
        hdr = (KERNELS_DIR / "functors.cuh").read_text()
        _cc_id = "\0".join([cc, ver, " ".join(CFLAGS + LIBS), cpu, hdr])
    return _cc_id


class CompileError(RuntimeError):
    pass


def _load(path: Path, name: str):
    lib = ctypes.CDLL(str(path))
    fn = getattr(lib, name)
    fn.argtypes = [ctypes.c_void_p] * 5
    fn.restype = None
    fn._tessera_lib = lib  # keep the library alive as long as the function
    return fn


def compile_c(source: str, name: str, key: tuple):
    """ctypes function for `source`; from disk when cached there, else compiled by gcc."""
    digest = hashlib.sha256((_compiler_id() + "\0" + source).encode()).hexdigest()[:32]
    d = cache_root() / "c"
    so = d / f"{name}_{digest}.so"
    t0 = time.perf_counter()
    if so.exists():
        try:
            fn = _load(so, name)
            dt = time.perf_counter() - t0
            register(KernelInfo(name, key, "c", source, dt, True, str(so)))
            notify("disk_hit", name, dt, "c")
            return fn
        except (OSError, AttributeError):
            pass  # corrupt or foreign entry: a miss, rebuilt below
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=d, prefix=".build-") as tmp:
        src = Path(tmp) / f"{name}.c"
        src.write_text(source)
        out = Path(tmp) / f"{name}.so"
        cmd = [compiler(), *CFLAGS, f"-I{KERNELS_DIR}", str(src), "-o", str(out), *LIBS]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(f"[fusion] gcc failed on {name}:\n{proc.stderr}\n--- source ---\n{source}")
        if env_choice("TESSERA_KEEP_SOURCE", "0", ("0", "1")) == "1":
            os.replace(src, so.with_suffix(".c"))
        os.replace(out, so)
    fn = _load(so, name)
    dt = time.perf_counter() - t0
    register(KernelInfo(name, key, "c", source, dt, False, str(so)))
    notify("compile", name, dt, "c")
    return fn
