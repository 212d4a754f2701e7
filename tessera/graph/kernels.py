"""What runs for each replay step, for the Tile IR and `Graph.kernel_source`.

A fused step names its generated kernel (C on the CPU, CUDA on a GPU) by the
layout key the fusion runtime compiled it under, with its loop IR and launch
configuration; an `apply_op` step is a host call of its `fwd` (NumPy/BLAS on the
CPU, hand-written kernels behind the backend on a GPU), an eager elementwise step
a backend ufunc. Descriptions are best effort: a failure here never breaks a
capture, it only leaves the kernel described as unknown.
"""
from __future__ import annotations

import inspect
import os


def _omp_threads():
    n = os.environ.get("OMP_NUM_THREADS")
    try:
        return int(n) if n else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                 else os.cpu_count() or 1)
    except ValueError:
        return os.cpu_count() or 1


def describe_fused(info):
    """kernel name/backend/source, loop structure and launch of a fused step."""
    probe = info.pop("probe", None)
    out = {"kernel_name": None, "kernel_backend": None, "source": None, "loop": None,
           "launch": {}}
    try:
        from ..fusion import lower
        p = lower.prepare(info["roots"])
        lay = lower.analyze(p, probe, info["shape"])
        loop = lower.lower(p, lay)
        out["loop"] = {
            "kind": loop.kind, "dims": list(lay.shape), "reduced": list(lay.reduced),
            "stmts": [(s.var, s.op, s.dtype, s.level) for s in loop.stmts
                      if s.op not in ("load", "param")],
            "loads": sum(1 for s in loop.stmts if s.op == "load"), "n": lay.n,
            "outs": [(v, d, r) for v, d, r in loop.outs],
        }
        dev = info["device"]
        if dev.type == "cpu":
            from ..fusion import compile_c
            ki = compile_c._infos.get(lay.key)
            if ki is not None:
                out.update(kernel_name=ki.name, kernel_backend="c", source=ki.source)
            else:  # no C compiler: the NumPy evaluator ran it
                out.update(kernel_name=f"numpy_eval_{p.label}_{p.sig_hash}",
                           kernel_backend="numpy",
                           source=_numpy_eval_source(info["roots"]))
            out["launch"] = {"threads": _omp_threads(), "parallel": "openmp",
                             "vector": "omp simd"}
        else:
            from ..fusion import render_cuda
            block = getattr(render_cuda, "BLOCK", 256)
            if loop.kind == "reduce":
                outs = 1
                for d, r in zip(lay.shape, lay.reduced):
                    outs *= 1 if r else d
                grid = outs
            else:
                grid = (lay.n + block - 1) // block
            grid = min(grid, getattr(render_cuda, "MAX_GRID", grid))
            out.update(kernel_name=loop.name, kernel_backend="cuda",
                       launch={"grid": [max(grid, 1), 1, 1], "block": [block, 1, 1],
                               "shared_memory": 0 if loop.kind != "reduce" else 32 * 8})
            out["source"], _ = render_cuda.render_cuda_ir(loop)  # (source, kernel name)
    except Exception as e:  # describing must never break capture
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def _numpy_eval_source(roots):
    from ..fusion.ir import toposort
    lines = ["# evaluated op by op with NumPy (tessera.fusion.runtime.evaluate_numpy)"]
    for i, n in enumerate(toposort(roots)):
        lines.append(f"v{i} = {n.op}({', '.join(str(id(s) % 997) for s in n.srcs)}) "
                     f"# {n.dtype} arg={n.arg!r}")
    return "\n".join(lines)


def host_source(fn):
    """Source text of a host function (a step's `fwd`), or its repr."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return repr(fn)


def describe_host(step, backend):
    """Kernel name, source and launch of an op / elementwise / in-place / copy step."""
    info = step.info
    if step.kind == "op":
        fwd = info["fwd"]
        mod = getattr(fwd, "__module__", "") or ""
        return {"kernel_name": f"host.{step.info.get('op_name', 'op')}",
                "kernel_backend": backend.name, "source": host_source(fwd),
                "callee": f"{mod}.{getattr(fwd, '__qualname__', 'fwd')}",
                "launch": {"host_call": True}}
    if step.kind == "ew":
        fn = backend.ew_fns.get(info["name"])
        callee = f"{getattr(backend.xp, '__name__', 'xp')}.{getattr(fn, '__name__', info['name'])}"
        src = f"# eager elementwise: backend.elementwise({info['name']!r}) -> {callee}\n" + \
            host_source(type(backend).elementwise)
        return {"kernel_name": f"{backend.name}.{info['name']}", "kernel_backend": backend.name,
                "source": src, "callee": callee, "launch": {"host_call": True}}
    if step.kind == "inplace":
        return {"kernel_name": f"host.inplace_{info['name']}", "kernel_backend": backend.name,
                "source": host_source(info["write"]), "callee": "write",
                "launch": {"host_call": True}}
    return {"kernel_name": "host.to_device", "kernel_backend": backend.name,
            "source": host_source(backend.from_numpy), "callee": "from_numpy",
            "launch": {"host_call": True}}
