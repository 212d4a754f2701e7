"""Dynamic shared memory over 48 KB: the device's limit and the per-function opt-in.

A CUDA launch may give a block at most 48 KB of dynamic shared memory unless the
function opts in (cudaFuncSetAttribute MaxDynamicSharedMemorySize, which CuPy exposes
as `Function.max_dynamic_shared_size_bytes`), and then up to the device's
sharedMemPerBlockOptin: 227 KB on sm_90 (H100/H200), 163 KB on sm_80, 99 KB on
sm_86/sm_89. HIP has no opt-in: a workgroup may use all of its LDS (64 KB on
MI200/MI300) as it is. Kernels that take their tiles from `TS_DYNAMIC_SMEM`
(compat.cuh) are launched through `launch` here.

    >>> smem_limit({"platform": "cuda", "smem_optin": 232448})
    232448
    >>> smem_limit({"platform": "cuda"})  # a device that reports no opt-in limit
    49152
"""
from __future__ import annotations

from .. import loader
from . import _runtime as rt
from .geometry import MAX_STATIC_SMEM

_opted: dict = {}  # id(function) -> (function, bytes it was opted in to); kept alive so ids stay unique


def smem_limit(facts) -> int:
    """Bytes of shared memory one block may have on the device `facts` describes."""
    return int(facts.get("smem_optin") or MAX_STATIC_SMEM)


def launch(file_name: str, name: str, grid, block, args, shared_mem: int):
    """`_runtime.launch` with `shared_mem` dynamic bytes, first opting the function in
    (once) when that is over the 48 KB a CUDA launch gets without asking."""
    if shared_mem > MAX_STATIC_SMEM and rt.device_facts()["platform"] == "cuda":
        fn = loader.get_kernel(file_name, name)
        done = _opted.get(id(fn))
        if done is None or done[1] < shared_mem:
            fn.max_dynamic_shared_size_bytes = shared_mem
            _opted[id(fn)] = (fn, shared_mem)
    rt.launch(file_name, name, grid, block, args, shared_mem)
