"""Custom operators backed by a user's CUDA/HIP kernel source: the `Kernel` spec
(source, kernel name, launch shape, extra arguments), compiling it through
`tessera.kernels.loader` (NVRTC on NVIDIA, CuPy/hiprtc on ROCm; the same disk
cache as tessera's own kernels), compile errors that point at the user's lines,
and the launch on CuPy buffers.

The calling convention of a custom kernel: the input pointers in call order, then
the output pointer, then the extra arguments (by default the output's element
count as a `long long`). Include "compat.cuh" for tessera's portable spellings
(bf16 storage, HIP/CUDA differences); it is on the include path.

    >>> k = Kernel('extern "C" __global__ void twice(const float* x, float* y, long long n) {'
    ...            ' long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;'
    ...            ' if (i < n) y[i] = 2 * x[i]; }', "twice")
    >>> k.launch_shape(1000)
    ((4, 1, 1), (256, 1, 1))
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from ..errors import TesseraError
from ..kernels import loader


class CustomKernelError(TesseraError, RuntimeError):
    """A custom kernel failed to compile; `.log` holds the compiler's output."""

    def __init__(self, message, log=""):
        super().__init__(message)
        self.log = log


def _triple(v, what, op):
    if isinstance(v, int):
        v = (v,)
    try:
        v = tuple(int(e) for e in v)
    except TypeError:
        raise ValueError(f"[{op}] {what} must be an int or a tuple of up to 3 ints, got {v!r}") from None
    if not 1 <= len(v) <= 3 or min(v) < 1:
        raise ValueError(f"[{op}] {what} must be 1 to 3 positive ints, got {v}")
    return v + (1,) * (3 - len(v))


class Kernel:
    """A CUDA/HIP kernel for a custom op (the small builder of `op.kernel`).

    source: the .cu text; name: the `__global__` function (an `extern "C"` name or a
    template name expression such as "scale<float>"); block: threads per block;
    grid: a tuple, or `grid(out, *inputs)` returning one (default: enough blocks
    of `block` threads for one thread per output element); args: `args(out,
    *inputs, **attrs)` -> the extra arguments after the pointers, given the call's
    attributes (default: the output size as int64); shared_mem: dynamic shared
    memory bytes (or `shared_mem(out, *inputs)`); options: compiler flags."""

    def __init__(self, source, name, grid=None, block=256, args=None, shared_mem=0, options=()):
        if not isinstance(source, str) or "__global__" not in source:
            raise ValueError("[op.kernel] source must be CUDA/HIP text defining a __global__ function")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][\w:<>, ]*$", name):
            raise ValueError(f"[op.kernel] kernel name must be a C++ function name, got {name!r}")
        base = name.split("<")[0].strip()
        if not re.search(r"\b" + re.escape(base) + r"\s*[<(]", source):
            raise ValueError(f"[op.kernel] the source defines no function named {base!r}")
        self.source, self.name = source, name
        self.block = _triple(block, "block", "op.kernel")
        if self.block[0] * self.block[1] * self.block[2] > 1024:
            raise ValueError(f"[op.kernel] block {self.block} has more than 1024 threads, the "
                             "per-block limit of CUDA and HIP")
        self.grid = grid if grid is None or callable(grid) else _triple(grid, "grid", "op.kernel")
        self.args, self.options = args, tuple(options)
        self.shared_mem = shared_mem if callable(shared_mem) else int(shared_mem)
        self.digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        self.op = "custom"

    # -- files and compiling ------------------------------------------------------
    def path(self) -> Path:
        """The source written verbatim (so compiler line numbers are the user's) under
        the kernel cache directory; the loader compiles and caches it from there."""
        d = loader.cache_dir() / "custom"
        p = d / f"{re.sub(r'[^A-Za-z0-9_]', '_', self.op)}-{self.digest}.cu"
        if not p.exists() or p.read_text() != self.source:
            d.mkdir(parents=True, exist_ok=True)
            loader._atomic_write(p, self.source.encode())
        return p

    def compile_error(self, err, compiler, arch):
        """A CustomKernelError from a loader.KernelCompileError: the log with the temp
        path replaced by `<op>.cu`, then the offending lines of the user's source."""
        log = str(getattr(err, "log", err)).replace(str(self.path()), f"{self.op}.cu")
        lines = self.source.splitlines()
        nums = sorted({int(m) for m in re.findall(r"\((\d+)\): (?:error|catastrophic)", log)}
                      | {int(m) for m in re.findall(r"\.cu:(\d+):\d+: (?:fatal )?error", log)})
        shown = []
        for n in nums[:5]:
            for k in range(max(1, n - 1), min(len(lines), n + 1) + 1):
                mark = ">" if k == n else " "
                shown.append(f"{mark}{k:5d} | {lines[k - 1]}")
            shown.append("      ...")
        excerpt = ("\nin your source:\n" + "\n".join(shown[:-1])) if shown else ""
        return CustomKernelError(f"[{self.op}] kernel {self.name!r} failed to compile ({compiler}, "
                                 f"{arch}):\n{log}{excerpt}", log)

    def check_nvrtc(self, arch="sm_80"):
        """Compile for `arch` with NVRTC (with a ptxas resource report); CustomKernelError on failure."""
        try:
            return loader.compile_check_nvrtc(str(self.path()), [self.name], arch, self.options)
        except loader.KernelCompileError as e:
            raise self.compile_error(e, "nvrtc", arch) from None

    def check_hipcc(self, arch="gfx90a"):
        """Full device compile for an AMD GPU with hipcc; CustomKernelError on failure."""
        try:
            return loader.compile_check_hipcc(str(self.path()), [self.name], arch, self.options)
        except loader.KernelCompileError as e:
            raise self.compile_error(e, "hipcc", arch) from None

    def check_available(self):
        """At registration: compile with whatever compiler this machine has (the GPU's own
        through CuPy, else NVRTC to PTX for sm_80); nothing to do without one."""
        try:
            from ..backend.cupy_source import cupy
            have_gpu = cupy().cuda.runtime.getDeviceCount() > 0
        except Exception:
            have_gpu = False
        if have_gpu:
            self.function()
        elif loader._have_cuda_bindings():
            try:
                loader.nvrtc_compile(str(self.path()), [self.name], "compute_80", self.options)
            except loader.KernelCompileError as e:
                raise self.compile_error(e, "nvrtc", "compute_80") from None

    def function(self):
        try:
            return loader.get_kernel(str(self.path()), self.name, self.options)
        except loader.KernelCompileError as e:
            raise self.compile_error(e, "nvrtc/hiprtc", "this GPU") from None

    # -- launching ----------------------------------------------------------------
    def launch_shape(self, n, out=None, inputs=()):
        if callable(self.grid):
            grid = _triple(self.grid(out, *inputs), "grid", self.op)
        elif self.grid is not None:
            grid = self.grid
        else:
            per = self.block[0] * self.block[1] * self.block[2]
            grid = (max(1, -(-int(n) // per)), 1, 1)
        return grid, self.block

    def launch(self, out_buf, in_bufs, out_t, in_ts, attrs=None):
        """Run on CuPy buffers (inputs made contiguous first), writing `out_buf`; `attrs`
        are the call's keyword attributes (`my_op(x, alpha=3.0)`), handed to `args`."""
        from ..backend.cupy_source import cupy as _cupy
        cupy = _cupy()
        ins = [cupy.ascontiguousarray(b) for b in in_bufs]
        extra = (self.args(out_t, *in_ts, **(attrs or {})) if self.args is not None
                 else (np.int64(out_buf.size),))
        if out_buf.size == 0:
            return out_buf
        grid, block = self.launch_shape(out_buf.size, out_t, in_ts)
        smem = self.shared_mem(out_t, *in_ts) if callable(self.shared_mem) else self.shared_mem
        self.function()(grid, block, tuple(ins) + (out_buf,) + tuple(extra), shared_mem=int(smem))
        return out_buf
