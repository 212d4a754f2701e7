"""Compiling and caching tessera's hand-written kernels (tessera/kernels/*.cu).

Owns: reading a kernel file with the headers it includes, the content-addressed
cache key, the in-memory and on-disk kernel caches ($TESSERA_CACHE_DIR, default
~/.cache/tessera/kernels; atomic writes; a corrupt entry is a miss), compile
listeners for the profiler, `get_kernel` (CuPy launchable function), and the
offline compile checks used by tests (`compile_check_nvrtc`, `compile_check_hipcc`).

CuPy and cuda-python are imported lazily: importing this module needs neither.

    >>> from tessera.kernels import loader
    >>> len(loader.cache_key("src", {}, (), ["k<f32>"], "sm_90", "nvrtc-13.0")) == 64
    True
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._config import env_choice
from .._listeners import Listeners

KERNELS_DIR = Path(__file__).resolve().parent
_INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


class KernelCompileError(RuntimeError):
    """A kernel failed to compile; the message names file, instantiations and log."""

    def __init__(self, file_name, name_expressions, log, compiler="nvrtc"):
        self.file_name, self.name_expressions, self.log = file_name, list(name_expressions), log
        names = ", ".join(self.name_expressions[:3]) or "(no instantiation)"
        if len(self.name_expressions) > 3:
            names += f" and {len(self.name_expressions) - 3} more"
        super().__init__(f"[{compiler}] compiling {file_name} for {names} failed:\n{log}")


# ---- compile listeners: the profiler subscribes here --------------------------------
# Events: {kind: "compile"|"cache_hit", name, seconds, source_hash} per compile.
_listeners = Listeners()
add_compile_listener = _listeners.add
remove_compile_listener = _listeners.remove


def _notify(kind, name, seconds, source_hash):
    if _listeners:
        _listeners.notify({"kind": kind, "name": name, "seconds": seconds,
                           "source_hash": source_hash})


# ---- sources and keys -----------------------------------------------------------------
def read_source(file_name: str) -> str:
    return (KERNELS_DIR / file_name).read_text()


def included_headers(file_name: str, kernels_dir: Path = KERNELS_DIR) -> dict:
    """{header name: text} for every quoted #include reachable from file_name."""
    seen: dict = {}
    stack = [(kernels_dir / file_name).read_text()]
    while stack:
        for inc in _INCLUDE_RE.findall(stack.pop()):
            if inc not in seen and (kernels_dir / inc).exists():
                seen[inc] = (kernels_dir / inc).read_text()
                stack.append(seen[inc])
    return dict(sorted(seen.items()))


def cache_key(source, headers, options, name_expressions, arch, compiler_version) -> str:
    """sha256 over everything that changes the binary; any difference -> another key."""
    h = hashlib.sha256()
    for part in (source, json.dumps(headers, sort_keys=True), json.dumps(list(options)),
                 json.dumps(list(name_expressions)), arch, compiler_version):
        data = part.encode()
        h.update(len(data).to_bytes(8, "little"))  # length-prefixed: no ambiguity at joins
        h.update(data)
    return h.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("TESSERA_CACHE_DIR") or Path.home() / ".cache" / "tessera" / "kernels")


# ---- disk cache -----------------------------------------------------------------------
class DiskCache:
    """Binary + JSON meta per key. The meta holds the binary's sha256, so a torn or
    corrupt entry fails verification and reads as a miss (and is removed)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_dir()

    def _paths(self, key):
        return self.root / f"{key}.bin", self.root / f"{key}.json"

    def get(self, key):
        """(binary bytes, meta dict) or None."""
        bin_path, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            binary = bin_path.read_bytes()
            if meta.get("key") != key or meta.get("sha256") != hashlib.sha256(binary).hexdigest():
                raise ValueError("checksum mismatch")
            return binary, meta
        except FileNotFoundError:
            return None
        except (ValueError, OSError, UnicodeDecodeError):
            for p in (bin_path, meta_path):  # corrupt: drop it so the next write is clean
                try:
                    p.unlink()
                except OSError:
                    pass
            return None

    def put(self, key, binary: bytes, meta: dict):
        self.root.mkdir(parents=True, exist_ok=True)
        bin_path, meta_path = self._paths(key)
        meta = dict(meta, key=key, sha256=hashlib.sha256(binary).hexdigest())
        # binary first, meta last: a reader that sees the meta sees a complete binary
        _atomic_write(bin_path, binary)
        _atomic_write(meta_path, json.dumps(meta, sort_keys=True).encode())


def _atomic_write(path: Path, data: bytes):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---- NVRTC (cuda.bindings) ------------------------------------------------------------
def cuda_include_dirs() -> list:
    """Toolkit include dirs holding cuda_fp16.h / mma.h (NVRTC has no default path)."""
    cands = [os.environ.get(v) for v in ("CUDA_PATH", "CUDA_HOME")]
    cands = [os.path.join(c, "include") for c in cands if c] + ["/usr/local/cuda/include"]
    try:
        import nvidia.cuda_runtime  # pip wheels ship the headers here
        cands.append(os.path.join(list(nvidia.cuda_runtime.__path__)[0], "include"))
    except ImportError:
        pass
    return [c for c in cands if os.path.exists(os.path.join(c, "cuda_fp16.h"))][:1]


def nvrtc_version() -> str:
    from cuda.bindings import nvrtc
    _, major, minor = nvrtc.nvrtcVersion()
    return f"nvrtc-{major}.{minor}"


def _check(result, what, prog=None, file_name="", names=()):
    from cuda.bindings import nvrtc
    err = result[0] if isinstance(result, tuple) else result
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        log = _nvrtc_log(prog) if prog is not None else ""
        raise KernelCompileError(file_name, names, f"{what}: {err}\n{log}")
    return result[1:] if isinstance(result, tuple) else ()


def _nvrtc_log(prog) -> str:
    from cuda.bindings import nvrtc
    _, size = nvrtc.nvrtcGetProgramLogSize(prog)
    buf = b" " * size
    nvrtc.nvrtcGetProgramLog(prog, buf)
    return buf.decode(errors="replace").rstrip("\x00 \n")


def nvrtc_compile(file_name, name_expressions, arch="sm_90", options=()):
    """Compile with NVRTC. Returns (binary, {name_expression: lowered name}, log);
    binary is a cubin for "sm_XX" and PTX for "compute_XX"."""
    from cuda.bindings import nvrtc
    source = read_source(file_name)
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), file_name.encode(), 0, [], [])
    _check(err, "nvrtcCreateProgram", None, file_name, name_expressions)
    try:
        for n in name_expressions:
            _check(nvrtc.nvrtcAddNameExpression(prog, n.encode()), "nvrtcAddNameExpression",
                   prog, file_name, [n])
        opts = [f"--gpu-architecture={arch}", "-std=c++17", f"-I{KERNELS_DIR}"]
        opts += [f"-I{d}" for d in cuda_include_dirs()] + list(options)
        res = nvrtc.nvrtcCompileProgram(prog, len(opts), [o.encode() for o in opts])
        log = _nvrtc_log(prog)
        if res[0] != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise KernelCompileError(file_name, name_expressions, log)
        lowered = {}
        for n in name_expressions:
            (low,) = _check(nvrtc.nvrtcGetLoweredName(prog, n.encode()), "nvrtcGetLoweredName",
                            prog, file_name, [n])
            lowered[n] = low.decode() if isinstance(low, bytes) else low
        if arch.startswith("sm_"):
            (size,) = _check(nvrtc.nvrtcGetCUBINSize(prog), "nvrtcGetCUBINSize", prog)
            binary = b" " * size
            _check(nvrtc.nvrtcGetCUBIN(prog, binary), "nvrtcGetCUBIN", prog)
        else:
            (size,) = _check(nvrtc.nvrtcGetPTXSize(prog), "nvrtcGetPTXSize", prog)
            binary = b" " * size
            _check(nvrtc.nvrtcGetPTX(prog, binary), "nvrtcGetPTX", prog)
        return binary, lowered, log
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


@dataclass
class KernelResources:
    registers: int = 0
    spill_stores: int = 0
    spill_loads: int = 0
    stack_bytes: int = 0
    shared_bytes: int = 0
    sgpr_spills: int = 0  # AMD only: scalar registers parked in vector-register lanes


@dataclass
class CompileReport:
    """Per-instantiation resources parsed from the compiler's resource report."""
    file_name: str
    arch: str
    compiler: str
    kernels: dict = field(default_factory=dict)  # name expression -> KernelResources
    log: str = ""
    seconds: float = 0.0

    def spilling(self):
        return {n: r for n, r in self.kernels.items() if r.spill_stores or r.spill_loads}


def parse_ptxas_log(log: str) -> dict:
    """{mangled entry name: KernelResources} from a `ptxas -v` report."""
    out, cur = {}, None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '([^']+)'", line)
        if m:
            cur = out.setdefault(m.group(1), KernelResources())
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            cur.stack_bytes = max(cur.stack_bytes, int(m.group(1)))
            cur.spill_stores += int(m.group(2))
            cur.spill_loads += int(m.group(3))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            cur.registers = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            cur.shared_bytes = int(s.group(1)) if s else 0
    return out


def _report_key(compiler, file_name, name_expressions, arch, options):
    return cache_key(read_source(file_name), included_headers(file_name), options, name_expressions,
                     arch, compiler)


def _cached_report(key):
    """A stored CompileReport for exactly these inputs (successful checks only), or None."""
    hit = DiskCache(cache_dir() / "checks").get(key)
    if hit is None:
        return None
    meta = hit[1]["report"]
    kernels = {n: KernelResources(**r) for n, r in meta["kernels"].items()}
    return CompileReport(meta["file_name"], meta["arch"], meta["compiler"], kernels, hit[0].decode(), 0.0)


def _store_report(key, rep):
    meta = {"file_name": rep.file_name, "arch": rep.arch, "compiler": rep.compiler,
            "kernels": {n: vars(r) for n, r in rep.kernels.items()}}
    try:
        DiskCache(cache_dir() / "checks").put(key, rep.log.encode(), {"report": meta})
    except OSError:
        pass  # a read-only cache only costs a recompile next time


def compile_check_nvrtc(file_name, name_expressions, arch="sm_90", options=(), use_cache=True) -> CompileReport:
    """Compile every instantiation for `arch` with ptxas -v; raise KernelCompileError on error.
    A successful report is cached under $TESSERA_CACHE_DIR/checks, keyed like kernels
    (sources, headers, options, names, arch, NVRTC version): unchanged kernels are not rebuilt."""
    key = _report_key(nvrtc_version(), file_name, name_expressions, arch, options)
    if use_cache and (rep := _cached_report(key)) is not None:
        return rep
    t0 = time.perf_counter()
    _, lowered, log = nvrtc_compile(file_name, name_expressions, arch, list(options) + ["-Xptxas=-v"])
    by_mangled = parse_ptxas_log(log)
    missing = [f"{n} (entry {low})" for n, low in lowered.items() if low not in by_mangled]
    if missing:  # an all-zero report would pass every register and spill check: say so
        raise KernelCompileError(file_name, list(lowered), "the ptxas -v report names no entry "
                                 f"for {', '.join(missing)}; the log:\n{log}")
    rep = CompileReport(file_name, arch, nvrtc_version(), log=log, seconds=time.perf_counter() - t0)
    for n, low in lowered.items():
        rep.kernels[n] = by_mangled[low]
    _store_report(key, rep)
    return rep


# ---- hipcc (AMD) ----------------------------------------------------------------------
def hipcc_path():
    return shutil.which("hipcc")


_hipcc_version_cache: dict = {}


def hipcc_version(hipcc) -> str:
    if hipcc not in _hipcc_version_cache:
        env = dict(os.environ, HIP_PLATFORM="amd")
        out = subprocess.run([hipcc, "--version"], capture_output=True, text=True, env=env)
        _hipcc_version_cache[hipcc] = "hipcc:" + (out.stdout + out.stderr).strip()
    return _hipcc_version_cache[hipcc]


def compile_check_hipcc(file_name, name_expressions, arch="gfx90a", options=(), use_cache=True) -> CompileReport:
    """Full device compile for an AMD GPU: a .cpp includes the .cu and takes the address
    of every instantiation (which instantiates it for the device), then
    `HIP_PLATFORM=amd hipcc --offload-arch=ARCH --cuda-device-only -c` builds device code
    down to the gfx ISA. Register/scratch use comes from -Rpass-analysis=kernel-resource-usage."""
    hipcc = hipcc_path()
    if hipcc is None:
        raise FileNotFoundError("hipcc not found")
    key = _report_key(hipcc_version(hipcc), file_name, name_expressions, arch, options)
    if use_cache and (cached := _cached_report(key)) is not None:
        return cached
    t0 = time.perf_counter()
    refs = ",\n".join(f"  reinterpret_cast<const void*>(&{n})" for n in name_expressions)
    src = f'#include "{file_name}"\nconst void* tessera_instantiations[] = {{\n{refs}\n}};\n'
    with tempfile.TemporaryDirectory() as d:
        cpp = Path(d) / "check.cpp"
        cpp.write_text(src)
        cmd = [hipcc, f"--offload-arch={arch}", "--cuda-device-only", "-c", "-std=c++17", "-O3",
               f"-I{KERNELS_DIR}", "-Rpass-analysis=kernel-resource-usage", str(cpp),
               "-o", str(Path(d) / "check.o"), *options]
        env = dict(os.environ, HIP_PLATFORM="amd")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise KernelCompileError(file_name, name_expressions, log, compiler="hipcc")
    rep = CompileReport(file_name, arch, "hipcc", log=log, seconds=time.perf_counter() - t0)
    cur = None
    for line in log.splitlines():
        m = re.search(r"remark: Function Name: (\S+)", line)
        if m:
            cur = rep.kernels.setdefault(m.group(1), KernelResources())
            continue
        m = re.search(r"remark:\s+(VGPRs|ScratchSize \[bytes/lane\]|SGPRs Spill|VGPRs Spill|LDS Size \[bytes/block\]): (\d+)", line)
        if m and cur is not None:  # (not `key`: that is the report's cache key, stored below)
            what, v = m.group(1), int(m.group(2))
            if what == "VGPRs":
                cur.registers = v
            elif what.startswith("ScratchSize"):
                cur.stack_bytes = v
            elif what == "SGPRs Spill":
                cur.sgpr_spills = v  # into VGPR lanes, not memory: not a spill to scratch
            elif what == "VGPRs Spill":
                cur.spill_stores += v
                cur.spill_loads += v
            else:
                cur.shared_bytes = v
    _store_report(key, rep)
    return rep


# ---- runtime: CuPy modules ------------------------------------------------------------
_memory: dict = {}  # (file, name expression, options) -> launchable CuPy function


def device_arch() -> str:
    """"sm_90" on NVIDIA, the gfx name (e.g. "gfx90a") on AMD, for the current device."""
    from ..backend.cupy_source import cupy as _cupy
    cupy = _cupy()
    if cupy.cuda.runtime.is_hip:
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props.get("gcnArchName", b"gfx")
        return (name.decode() if isinstance(name, bytes) else str(name)).split(":")[0]
    return "sm_" + cupy.cuda.Device().compute_capability


def _emulated_device(cupy) -> bool:
    """True for a device that runs kernel source on the CPU (tessera.sim): it loads
    no native binaries, so NVRTC's cubin would be thrown away."""
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    return bool(props.get("tesseraEmulated", 0))


def _have_cuda_bindings() -> bool:
    try:
        from cuda.bindings import nvrtc  # noqa: F401
        return bool(cuda_include_dirs())
    except Exception:
        return False


class KernelModule:
    """One compiled kernel file with a set of instantiations.

    On NVIDIA with cuda-python present, tessera compiles with NVRTC itself, keeps the
    cubin in its disk cache and loads it with `cupy.RawModule(path=...)`. Otherwise (HIP,
    or no cuda-python, or a cubin the driver rejects) CuPy compiles the source and
    CuPy's own cache holds the binary; tessera still records its key, so the listeners
    see compile vs cache_hit the same way."""

    def __init__(self, file_name, name_expressions, options=()):
        self.file_name = file_name
        self.name_expressions = list(name_expressions)
        self.options = tuple(options)
        self._module = None
        self._lowered: dict = {}
        self.source_hash = None

    def _compile(self):
        from ..backend.cupy_source import cupy as _cupy
        cupy = _cupy()
        hip = cupy.cuda.runtime.is_hip
        arch = device_arch()
        source, headers = read_source(self.file_name), included_headers(self.file_name)
        native = not hip and not _emulated_device(cupy) and _have_cuda_bindings()
        version = nvrtc_version() if native else f"cupy-{cupy.__version__}-{'hiprtc' if hip else 'nvrtc'}"
        key = cache_key(source, headers, self.options, self.name_expressions, arch, version)
        self.source_hash = key
        cache = DiskCache()
        label = f"{self.file_name}:{','.join(self.name_expressions)}"
        t0 = time.perf_counter()
        hit = cache.get(key)
        was_hit = hit is not None
        if native:
            try:
                if hit is None:
                    binary, lowered, _ = nvrtc_compile(self.file_name, self.name_expressions, arch, self.options)
                    cache.put(key, binary, {"lowered": lowered, "file": self.file_name, "arch": arch,
                                            "compiler": version, "names": self.name_expressions})
                    if env_choice("TESSERA_KEEP_KERNEL_SOURCE", "0", ("0", "1")) == "1":  # debugging: source beside binary
                        _atomic_write(cache.root / f"{key}.cu", source.encode())
                    hit = cache.get(key)
                if hit is not None:
                    self._module = cupy.RawModule(path=str(cache.root / f"{key}.bin"))
                    self._lowered = hit[1]["lowered"]
                    for n in self.name_expressions:  # load now: a rejected cubin falls back below
                        self._module.get_function(self._lowered[n])
            except cupy.cuda.driver.CUDADriverError:
                self._module, native = None, False
        if self._module is None:
            opts = ("-std=c++17", f"-I{KERNELS_DIR}") + self.options
            self._module = cupy.RawModule(code=source, options=opts, name_expressions=self.name_expressions)
            try:
                for n in self.name_expressions:
                    self._module.get_function(n)  # compiles (or hits CuPy's cache) now
            except cupy.cuda.compiler.CompileException as e:
                raise KernelCompileError(self.file_name, self.name_expressions, str(e)) from None
            self._lowered = {n: n for n in self.name_expressions}
            if hit is None:
                cache.put(key, b"", {"file": self.file_name, "arch": arch, "compiler": version,
                                     "names": self.name_expressions, "binary": "cupy-cache"})
        _notify("cache_hit" if was_hit else "compile", label, time.perf_counter() - t0, key)

    def get_function(self, name_expression):
        if self._module is None:
            self._compile()
        return self._module.get_function(self._lowered[name_expression])


def get_kernel(file_name, name_expression, options=()):
    """The launchable CuPy function for one instantiation, compiled at most once per process."""
    key = (file_name, name_expression, tuple(options))
    fn = _memory.get(key)
    if fn is None:
        fn = KernelModule(file_name, [name_expression], options).get_function(name_expression)
        _memory[key] = fn
    return fn


def clear_memory_cache():
    _memory.clear()


def _register():
    from ..backend import cupy_source
    cupy_source.on_switch(clear_memory_cache)


_register()


# ---- many checks at once ------------------------------------------------------------
def _check_job(job):
    kind, file_name, names, arch = job
    try:
        if kind == "nvrtc":
            compile_check_nvrtc(file_name, names, arch=arch)
        else:
            compile_check_hipcc(file_name, names, arch=arch)
    except Exception:  # the caller re-runs the check and reports the failure itself
        pass


def warm_compile_checks(jobs, workers=None):
    """Run compile checks [(kind "nvrtc"|"hipcc", file, names, arch), ...] over
    `workers` processes so that their reports land in the disk cache. A spawn
    context, not fork: the calling process may hold threads (JAX, OpenMP) that a
    forked child would deadlock on."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    workers = workers or os.cpu_count() or 1
    if workers < 2 or len(jobs) < 2:
        for job in jobs:
            _check_job(job)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_check_job, jobs))
