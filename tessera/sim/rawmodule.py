"""The simulated `cupy.RawModule` / `RawKernel`: real kernel source compiled for
the CPU with emu.h, launched with the arguments exactly as the caller packed them.

A module's source (a tessera .cu file, a generated fused kernel, a custom op's
source) is compiled by the host C++ compiler into a shared library with one
extern "C" entry per kernel (template instantiations by their name expression).
The entry receives every argument's bytes, size and kind and checks them
against the kernel's parameter list, so a launcher/kernel mismatch (count,
types, widths) fails here as a clear error instead of garbage on a GPU.
Around each launch the simulator checks what a GPU would reject (block and
grid limits, shared memory over the device limit or over 48 KB without the
opt-in attribute, pointers of another device, host arrays) and, after it,
the red zones of every array it was given (writes out of bounds).

Compiled libraries are cached on disk under the kernel cache directory, keyed
by a hash of the translation unit, the headers, the compiler and its flags.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from .._config import env_choice
from . import cuda as _cuda
from .ndarray import ndarray

SIM_DIR = Path(__file__).resolve().parent
CXX_FLAGS = ("-std=c++17", "-O1", "-fPIC", "-shared", "-w", "-fwrapv", "-fno-strict-aliasing", "-fno-gnu-unique",
             "-ffp-contract=off")
DEFAULT_DYNAMIC_SMEM = 48 * 1024
_lock = threading.RLock()  # one launch at a time: the emulator's state is global
_libs: dict = {}
_KERNEL_RE = re.compile(r'extern\s+"C"\s+(?:__global__\s+)?(?:void\s+)?(?:__launch_bounds__\([^)]*\)\s+)?'
                        r'(?:__global__\s+)?void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(')
_KIND = {"b": 4, "i": 1, "u": 2, "f": 3, "c": 5}


class SimLaunchError(RuntimeError):
    """A launch the simulated GPU rejects, or a fault it saw (named kernel and launch)."""


def _cxx():
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if cxx is None:
        raise _cuda.CompileException("[sim] no C++ compiler (g++/clang++) to build kernels for the CPU")
    return cxx


_cxx_version_cache: dict = {}


def _cxx_version(cxx):
    v = _cxx_version_cache.get(cxx)
    if v is None:
        v = _cxx_version_cache[cxx] = subprocess.run([cxx, "--version"], capture_output=True,
                                                     text=True).stdout.split("\n")[0]
    return v


def _include_dirs(options):
    dirs = []
    it = iter(options)
    for o in it:
        if o == "-I":
            dirs.append(next(it, ""))
        elif o.startswith("-I"):
            dirs.append(o[2:])
    return [d for d in dirs if d and os.path.isdir(d) and "cuda" not in os.path.basename(d).lower()]


def _headers_digest(dirs):
    h = hashlib.sha256()
    for d in [str(SIM_DIR)] + dirs:
        for p in sorted(Path(d).glob("*.h")) + sorted(Path(d).glob("*.cuh")):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _cache_root():
    from ..kernels.loader import cache_dir
    root = cache_dir() / "sim"
    try:
        root.mkdir(parents=True, exist_ok=True)
        return root
    except OSError:
        root = Path(tempfile.gettempdir()) / "tessera-sim-kernels"
        root.mkdir(parents=True, exist_ok=True)
        return root


# `extern __shared__ T name[];` (CUDA's dynamic shared memory) as a pointer to the
# block's buffer: `__shared__` is a function-static in the emulator, and an
# extern static does not exist.
_EXTERN_SHARED = re.compile(r"extern\s+__shared__\s+((?:(?:__align__|alignas)\s*\(\s*\d+\s*\)\s*|"
                            r"__attribute__\s*\(\(.*?\)\)\s*)*)([\w:<>, ]+?)\s+(\w+)\s*\[\s*\]\s*;")


def _emulable(code):
    return _EXTERN_SHARED.sub(lambda m: f"{m.group(2)}* {m.group(3)} = reinterpret_cast<{m.group(2)}*>"
                                        f"(ts_emu_dynamic_smem());", code)


def _prelude(warp, hip):
    return f"#define TS_CPU_EMU {warp}\n" + ("#define TS_EMU_HIP 1\n" if hip else "") + '#include "emu.h"\n'


_pch_dirs: dict = {}


def _pch_dir(cxx, warp, hip, root):
    """A folder holding ts_emu_pre.h (the prelude) and its precompiled header: parsing
    emu.h and the C++ headers it pulls in is about half of every kernel's compile."""
    k = (cxx, warp, hip)
    d = _pch_dirs.get(k)
    if d is not None:
        return d
    text = _prelude(warp, hip)
    key = hashlib.sha256("\0".join([text, (SIM_DIR / "emu.h").read_text(), _cxx_version(cxx),
                                     " ".join(CXX_FLAGS)]).encode()).hexdigest()[:24]
    d = root / f"pch-{key}"
    gch = d / "ts_emu_pre.h.gch"
    if not gch.exists():
        try:
            d.mkdir(exist_ok=True)
            hdr = d / "ts_emu_pre.h"
            if not hdr.exists():
                tmp = d / f".h.{os.getpid()}.{threading.get_ident()}"
                tmp.write_text(text)
                os.replace(tmp, hdr)
            tmp = d / f".gch.{os.getpid()}.{threading.get_ident()}"
            flags = [f for f in CXX_FLAGS if f != "-shared"]
            proc = subprocess.run([cxx, *flags, f"-I{SIM_DIR}", "-x", "c++-header", str(hdr), "-o", str(tmp)],
                                  capture_output=True, text=True)
            if proc.returncode == 0:
                os.replace(tmp, gch)
            elif tmp.exists():
                tmp.unlink()
        except OSError:  # a read-only cache: compile without the precompiled header
            pass
    _pch_dirs[k] = d if (d / "ts_emu_pre.h").exists() else None
    return _pch_dirs[k]


def _translation_unit(code, names, warp, hip, pch=False):
    code = _emulable(code)
    lines = ['#include "ts_emu_pre.h"' if pch else _prelude(warp, hip),
             "#line 1 \"kernel.cu\"", code, "", "// ---- simulator entries ----"]
    for i, n in enumerate(names):
        lines.append(
            f'extern "C" int ts_sim_entry_{i}(const unsigned* g, const unsigned* b, unsigned long long smem, '
            f'unsigned char* smem_buf, int nargs, void** argv, const long* sizes, const int* kinds, '
            f'int direct) {{\n'
            f'  return ts_emu::launch(&{n}, "{n}", g, b, smem, smem_buf, nargs, argv, sizes, kinds, direct);\n}}')
    return "\n".join(lines) + "\n"


_runtime = None


def _runtime_lib(cxx, root):
    """emu_runtime.cpp built once and loaded with RTLD_GLOBAL: the scheduler, the
    fiber stacks and the thread indices every kernel library refers to."""
    global _runtime
    if _runtime is None:
        src = SIM_DIR / "emu_runtime.cpp"
        key = hashlib.sha256("\0".join([src.read_text(), (SIM_DIR / "emu.h").read_text(), _cxx_version(cxx),
                                        " ".join(CXX_FLAGS)]).encode()).hexdigest()[:24]
        so = root / f"emu-runtime-{key}.so"
        if not so.exists():
            tmp = f"{so}.{os.getpid()}.{threading.get_ident()}.tmp"
            proc = subprocess.run([cxx, *CXX_FLAGS, f"-I{SIM_DIR}", str(src), "-o", tmp],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise _cuda.CompileException(f"[sim] building the emulator runtime failed:\n{proc.stderr[-4000:]}")
            os.replace(tmp, so)
        _runtime = ctypes.CDLL(str(so), mode=ctypes.RTLD_GLOBAL)
    return _runtime


def _last_error():
    return ctypes.string_at(ctypes.addressof(ctypes.c_char.in_dll(_runtime, "ts_emu_error_buf"))).decode(
        errors="replace")


# A kernel whose own source names none of these, and that includes nothing but the
# functor headers, cannot wait at a barrier (the generated elementwise kernels):
# its threads run as plain calls, no fibers (rawmodule's "direct mode", 4x faster).
_BARRIER_WORDS = re.compile(r"__syncthreads|syncwarp|shfl|__shared__|TS_DYNAMIC_SMEM|atomic|"
                            r"warp_reduce|block_reduce|wmma|cooperative|grid\.sync|reduce_common")
_PLAIN_INCLUDES = {"compat.cuh", "functors.cuh"}


def barrier_free(code):
    if env_choice("TESSERA_SIM_FIBERS", "0", ("0", "1")) == "1":
        return False
    includes = set(re.findall(r'#\s*include\s*[<"]([^>"]+)[>"]', code))
    return not _BARRIER_WORDS.search(code) and includes <= _PLAIN_INCLUDES


class _Library:
    """One compiled shared library: the entries of `names`."""

    def __init__(self, code, names, options):
        self.direct = barrier_free(code)
        props = _cuda._state.props[_cuda._state.current]
        hip = props.platform == "hip"
        dirs = _include_dirs(options)
        cxx = _cxx()
        root = _cache_root()
        _runtime_lib(cxx, root)
        pch = _pch_dir(cxx, props.warp_size, hip, root)
        # the key names the prelude itself, not the precompiled header's folder
        key = hashlib.sha256("\0".join([_translation_unit(code, names, props.warp_size, hip),
                                        _headers_digest(dirs), _cxx_version(cxx), " ".join(CXX_FLAGS)])
                             .encode()).hexdigest()[:32]
        tu = _translation_unit(code, names, props.warp_size, hip, pch=pch is not None)
        if pch is not None:
            dirs = [str(pch)] + dirs
        so = root / f"{key}.so"
        if not so.exists():
            self._build(cxx, tu, dirs, root, so, names)
        try:
            self.lib = ctypes.CDLL(str(so))
        except OSError:  # a truncated or foreign file under our name: rebuild it once
            so.unlink(missing_ok=True)
            self._build(cxx, tu, dirs, root, so, names)
            self.lib = ctypes.CDLL(str(so))
        self.entries = {}
        for i, n in enumerate(names):
            fn = getattr(self.lib, f"ts_sim_entry_{i}")
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulonglong, ctypes.c_void_p, ctypes.c_int,
                           ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
            self.entries[n] = fn

    @staticmethod
    def _build(cxx, tu, dirs, root, so, names):
        fd, src = tempfile.mkstemp(suffix=".cpp", dir=root)
        with os.fdopen(fd, "w") as f:
            f.write(tu)
        tmp = f"{so}.{os.getpid()}.{threading.get_ident()}.tmp"
        cmd = [cxx, *CXX_FLAGS, f"-I{SIM_DIR}", *[f"-I{d}" for d in dirs], src, "-o", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise _cuda.CompileException(
                    f"[sim] compiling {', '.join(names)} for the CPU emulator failed:\n{proc.stderr[-4000:]}",
                    tu, ",".join(names), cmd)
            os.replace(tmp, so)
        finally:
            os.unlink(src)
            if os.path.exists(tmp):
                os.unlink(tmp)


def _library(code, names, options):
    key = (code, tuple(names), tuple(options), _cuda._state.props[0].warp_size, _cuda._state.is_hip)
    with _lock:
        lib = _libs.get(key)
        if lib is None:
            lib = _libs[key] = _Library(code, names, options)
        return lib


class RawModule:
    """As `cupy.RawModule(code=..., options=..., name_expressions=...)`. A module
    loaded from a binary (`path=`) holds GPU code: the simulator cannot run it and
    answers as a driver does for a cubin built for another architecture."""

    def __init__(self, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, name_expressions=None, jitify=False):
        if path is not None:
            raise _cuda.CUDADriverError("CUDA_ERROR_NO_BINARY_FOR_GPU: no kernel image is available "
                                        "for execution on the device (the simulated GPU runs source only)")
        if code is None:
            raise TypeError("RawModule needs code or path")
        self.code = code
        self.options = tuple(options)
        self.name_expressions = list(name_expressions) if name_expressions else []
        self._functions = {}

    def get_function(self, name):
        fn = self._functions.get(name)
        if fn is None:
            names = self.name_expressions if name in self.name_expressions else \
                sorted(set(_KERNEL_RE.findall(self.code)) | {name})
            lib = _library(self.code, names, self.options)
            if name not in lib.entries:
                raise _cuda.CUDADriverError(f"CUDA_ERROR_NOT_FOUND: named symbol not found: {name}")
            fn = self._functions[name] = Function(name, lib, lib.entries[name])
        return fn

    def compile(self, log_stream=None):
        for n in self.name_expressions:
            self.get_function(n)


class RawKernel:
    """As `cupy.RawKernel(code, name, options)`."""

    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, jitify=False):
        self._module = RawModule(code=code, options=options)
        self.name = name
        self._fn = None

    def _function(self):
        if self._fn is None:
            self._fn = self._module.get_function(self.name)
        return self._fn

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        self._function()(grid, block, args, shared_mem=shared_mem, stream=stream)

    def __getattr__(self, name):
        return getattr(self._function(), name)

    def __setattr__(self, name, value):
        if name == "max_dynamic_shared_size_bytes":
            setattr(self._function(), name, value)
        else:
            object.__setattr__(self, name, value)


def _dims(v, what, kernel):
    if isinstance(v, (int, np.integer)):
        v = (int(v),)
    v = tuple(int(x) for x in v)
    if not 1 <= len(v) <= 3:
        raise SimLaunchError(f"[sim] kernel {kernel}: {what} {v} must have 1 to 3 dimensions")
    return v + (1,) * (3 - len(v))


class Function:
    """A launchable kernel (cupy.cuda.Function)."""

    def __init__(self, name, lib, entry):
        self.name = name
        self._lib = lib
        self._entry = entry
        self.max_dynamic_shared_size_bytes = DEFAULT_DYNAMIC_SMEM
        self.num_regs = 0
        self.local_size_bytes = 0
        self.shared_size_bytes = 0
        self.const_size_bytes = 0
        p = _cuda._state.props[0]
        self.max_threads_per_block = p.max_threads_per_block

    def _check_geometry(self, grid, block, shared_mem):
        p = _cuda._state.props[_cuda._state.current]
        where = f"kernel {self.name} launched with grid {grid}, block {block}, shared_mem {shared_mem}"
        if any(g < 1 for g in grid) or any(b < 1 for b in block):
            raise SimLaunchError(f"[sim] {where}: every grid and block dimension must be at least 1 "
                                 "(cudaErrorInvalidConfiguration)")
        nthreads = block[0] * block[1] * block[2]
        if nthreads > p.max_threads_per_block or any(b > m for b, m in zip(block, p.max_block)):
            raise SimLaunchError(f"[sim] {where}: {nthreads} threads per block, the device allows "
                                 f"{p.max_threads_per_block} (at most {p.max_block} per dimension)")
        if any(g > m for g, m in zip(grid, p.max_grid)):
            raise SimLaunchError(f"[sim] {where}: the grid exceeds the device's {p.max_grid}")
        if shared_mem > p.shared_per_block_optin:
            raise SimLaunchError(f"[sim] {where}: {shared_mem} bytes of dynamic shared memory, over the "
                                 f"device's limit of {p.shared_per_block_optin} bytes per block")
        if shared_mem > max(self.max_dynamic_shared_size_bytes, 0) and shared_mem > p.shared_per_block:
            raise SimLaunchError(f"[sim] {where}: {shared_mem} bytes of dynamic shared memory need the "
                                 f"opt-in attribute (max_dynamic_shared_size_bytes is "
                                 f"{self.max_dynamic_shared_size_bytes}; default limit {p.shared_per_block})")

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None, enable_cooperative_groups=False):
        grid, block = _dims(grid, "grid", self.name), _dims(block, "block", self.name)
        shared_mem = int(shared_mem)
        self._check_geometry(grid, block, shared_mem)
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"[sim] kernel {self.name}: args must be a tuple, got {type(args).__name__}")
        dev = _cuda._state.current
        n = len(args)
        keep, arrays = [], []
        argv = (ctypes.c_void_p * max(n, 1))()
        sizes = (ctypes.c_long * max(n, 1))()
        kinds = (ctypes.c_int * max(n, 1))()
        for i, a in enumerate(args):
            if isinstance(a, ndarray):
                if a._mem.device != dev:
                    raise SimLaunchError(f"[sim] kernel {self.name}: argument {i} (shape {a.shape}, "
                                         f"{a.dtype}) lives on device {a._mem.device}, the launch runs on "
                                         f"device {dev} (an illegal address on a GPU)")
                v = np.array(a._a.__array_interface__["data"][0], np.uintp)
                kinds[i] = 0
                arrays.append((i, a))
            elif isinstance(a, np.ndarray):
                raise TypeError(f"[sim] kernel {self.name}: argument {i} is a host numpy.ndarray "
                                f"(shape {a.shape}); pass a device array (CuPy: Unsupported type "
                                "<class 'numpy.ndarray'>)")
            else:
                if isinstance(a, bool):
                    a = np.bool_(a)
                elif isinstance(a, int):
                    a = np.int64(a)  # CuPy's rule: a Python int is passed as int64
                elif isinstance(a, float):
                    a = np.float64(a)
                elif isinstance(a, complex):
                    a = np.complex128(a)
                if not isinstance(a, np.generic):
                    raise TypeError(f"[sim] kernel {self.name}: argument {i} has unsupported type "
                                    f"{type(a).__name__}")
                v = np.array(a)
                kinds[i] = _KIND.get(v.dtype.kind, 5)
            keep.append(v)
            argv[i] = v.ctypes.data
            sizes[i] = v.itemsize
        g = (ctypes.c_uint * 3)(*grid)
        b = (ctypes.c_uint * 3)(*block)
        smem = np.full(max(shared_mem, 1), 0xFF, np.uint8)  # uninitialized shared memory reads as NaN/-1
        with _lock:
            rc = self._entry(g, b, shared_mem, smem.ctypes.data, n, argv, sizes, kinds, self._lib.direct)
            err = _last_error() if rc else None
        if rc:
            raise SimLaunchError(f"[sim] {err} (grid {grid}, block {block})")
        for i, a in arrays:
            damage = a._mem.redzone_damage()
            if damage is not None:
                a._mem.repair()
                side, off = damage
                raise SimLaunchError(f"[sim] kernel {self.name} (grid {grid}, block {block}) wrote out of "
                                     f"bounds of argument {i} (shape {a.shape}, {a.dtype}): {off} byte(s) "
                                     f"{side} of its allocation")
