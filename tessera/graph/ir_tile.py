"""Tile IR: per replay step, the kernel that runs it (generic MLIR).

A `"tessera.kernel"` per step carries the kernel's name (`Graph.kernel_source(name)`
gives its source), backend, launch configuration (grid/block/shared memory on a
GPU, OpenMP threads on the CPU), the `tessera.ids` of the Graph IR ops it computes,
and a region with its loop/tile structure: for a generated kernel, the parallel
loop over output elements (or over outputs of a reduction, with the blocked,
vector-lane reduce loop inside) around the loop-IR statements; for a host call,
the function it calls.
"""
from __future__ import annotations

from .mlir import Emitter


def _stmts(e, loop):
    for var, op, dt, level in loop["stmts"]:
        e.op("tessera.stmt", attrs={"var": var, "op": op, "dtype": dt,
                                    "hoist": ("kernel", "row", "element")[level]
                                    if isinstance(level, int) and 0 <= level < 3 else level})
    for var, dt, red in loop["outs"]:
        e.op("tessera.store", attrs={"var": var, "dtype": dt, "reduce": red or ""})


def _fused_body(e, k):
    loop = k["loop"]
    launch = k.get("launch") or {}
    if loop is None:
        e.op("tessera.unknown_loop", attrs={"error": k.get("error", "")})
        return
    dims, red = loop["dims"], loop["reduced"]
    if loop["kind"] == "reduce":
        outer = [d for d, r in zip(dims, red) if not r]
        inner = [d for d, r in zip(dims, red) if r]
        o = 1
        for d in outer:
            o *= d
        r = 1
        for d in inner:
            r *= d
        if k.get("kernel_backend") == "cuda":
            par = {"mapping": "block per output", "extent": o}
            inner_attrs = {"mapping": "threads stride, warp shuffle", "extent": r}
        else:
            from ..fusion import render_c
            par = {"mapping": "openmp parallel for", "extent": o}
            inner_attrs = {"mapping": "blocked simd lanes", "extent": r,
                           "block": getattr(render_c, "RBLOCK", 1024),
                           "lanes": getattr(render_c, "LANES", 16)}

        def reduce_loop():
            e.op("tessera.reduce_for", attrs=dict(inner_attrs, dims=inner),
                 region=lambda: _stmts(e, loop))
        e.op("tessera.parallel_for", attrs=dict(par, dims=outer), region=reduce_loop)
        return
    if k.get("kernel_backend") == "cuda":
        attrs = {"mapping": "grid-stride loop", "extent": loop["n"], "dims": dims}
        e.op("tessera.parallel_for", attrs=attrs, region=lambda: _stmts(e, loop))
        return
    threads = launch.get("threads") or 1
    chunk = max(1, -(-loop["n"] // threads))

    def simd():
        e.op("tessera.simd_for", attrs={"extent": chunk, "vector": "omp simd"},
             region=lambda: _stmts(e, loop))
    e.op("tessera.parallel_for", attrs={"mapping": "openmp threads", "extent": loop["n"],
                                        "dims": dims, "tile": chunk}, region=simd)


def dump(g):
    e = Emitter()
    kernels = g.kernels()

    def body():
        for k in kernels:
            launch = k.get("launch") or {}
            attrs = {"kernel": k["kernel_name"] or "unknown", "step": k["step"],
                     "kind": k["kind"], "backend": k.get("kernel_backend") or "",
                     "tessera.ids": list(k["ids"]),
                     "source": f"kernel_source({k['kernel_name']!r})",
                     "shared_memory": int(launch.get("shared_memory", 0))}
            if "grid" in launch:
                attrs["grid"] = list(launch["grid"])
                attrs["block"] = list(launch["block"])
            if "threads" in launch:
                attrs["threads"] = int(launch["threads"])
            if k["kind"] == "fused":
                e.op("tessera.kernel", attrs=attrs, region=lambda k=k: _fused_body(e, k))
            else:
                callee = k.get("callee", "")
                e.op("tessera.kernel", attrs=attrs, region=lambda c=callee: e.op(
                    "tessera.host_call", attrs={"callee": c, "launch": "synchronous"}))
    e.module(body)
    return e.text()
