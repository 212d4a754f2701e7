"""Schedule IR: the replay steps in order, with buffer liveness (generic MLIR).

Inside one `"tessera.schedule"` op: a `"tessera.alloc"` before the step that first
writes a buffer, the step itself, and a `"tessera.free"` after its last reader.
A fused group is a `"tessera.group"` whose region lists its member ops (each with
the `tessera.id` of its Graph IR op); any other step is a `"tessera.launch"`.
Each step names its kernel (see the Tile IR), the fusion mode and the tile sizes
in force when it ran (`STATE.fusion_mode`, the `schedule.hint` tile sizes, else the
kernel's own tiling). Graph ops that no step computes (dead code, lazy values
nobody read) are listed as `"tessera.elided"` so every id appears at this level.
"""
from __future__ import annotations

from .mlir import Emitter


def liveness(g):
    """(allocs, frees): per live step, the slots it allocates and the slots that
    die after it. Inputs, externals, outputs and rebound gradients never die."""
    from .api import _out_slots
    keep = set(_out_slots(g.out_tree)) | {b[2] for b in g.bindings}
    last, first = {}, {}
    for i, st in enumerate(g.steps):
        for s in st.ins:
            last[s] = i
        for s in st.outs:
            first.setdefault(s, i)
            last.setdefault(s, i)
    allocs = [[] for _ in g.steps]
    frees = [[] for _ in g.steps]
    for s, i in first.items():
        if g.slots[s].kind == "intermediate":
            allocs[i].append(s)
    for s, i in last.items():
        if g.slots[s].kind == "intermediate" and s not in keep:
            frees[i].append(s)
    return allocs, frees


def nbytes(s):
    n = s.dtype.itemsize
    for d in s.shape:
        n *= d
    return n


def tile_sizes(st, k):
    """Tile sizes chosen for a step: the active hint's, else the kernel's own."""
    th = st.info.get("tile_hint")
    ts = getattr(th, "tile_sizes", None)
    if ts:
        return list(ts), "schedule.hint"
    loop = k.get("loop") if k else None
    if st.kind == "fused" and loop:
        if loop["kind"] == "reduce":
            from ..fusion import render_c
            return [getattr(render_c, "RBLOCK", 1024)], "kernel"
        threads = (k.get("launch") or {}).get("threads") or 1
        block = (k.get("launch") or {}).get("block")
        if block:
            return [block[0]], "kernel"
        return [max(1, -(-loop["n"] // threads))], "kernel"
    return [], "library"


def dump(g):
    e = Emitter()
    allocs, frees = liveness(g)
    kernels = g.kernels()
    ops = g.ops
    live_ids = set()
    for st in g.steps:
        live_ids.update(st.ids)
    computed_anywhere = set()
    for st in g.all_steps:
        computed_anywhere.update(st.ids)

    def body():
        for i, st in enumerate(g.steps):
            k = kernels[i]
            for s in allocs[i]:
                sl = g.slots[s]
                b = 0 if sl.view else nbytes(sl)
                e.op("tessera.alloc", attrs={"buffer": s, "shape": list(sl.shape),
                                             "dtype": sl.dtype.name, "bytes": b,
                                             "view": bool(sl.view)})
            tiles, origin = tile_sizes(st, k)
            attrs = {"step": i, "kernel": k["kernel_name"] or "unknown",
                     "fusion_mode": st.info.get("fusion_mode", "default"),
                     "tile_sizes": tiles, "tile_origin": origin,
                     "reads": list(st.ins), "writes": list(st.outs or st.ins[:1])}
            cfg = getattr(st.info.get("tile_hint"), "config", None)
            if cfg:  # an autotuned configuration (tessera.autotune) was in force
                attrs["autotune"] = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
            if st.kind == "fused":
                attrs.update({"tessera.ids": list(st.ids), "mode": "fused",
                              "reason": st.info.get("reason") or ""})

                def members(st=st):
                    for oid in st.ids:
                        op = ops[oid]
                        e.op("tessera." + op.name, attrs={"tessera.id": oid}, site=op.site or ())
                e.op("tessera.group", attrs=attrs, region=members,
                     site=st.info.get("site") or ())
            else:
                op = ops[st.ids[0]]
                attrs.update({"tessera.id": st.ids[0], "op": op.name,
                              "mode": "inplace" if st.kind == "inplace" else "eager"})
                e.op("tessera.launch", attrs=attrs, site=op.site or ())
            for s in frees[i]:
                e.op("tessera.free", attrs={"buffer": s})
        for op in ops:
            if op.oid not in live_ids:
                why = "dead code: result unused" if op.oid in computed_anywhere else \
                    "never computed: a pending lazy value nobody read"
                e.op("tessera.elided", attrs={"tessera.id": op.oid, "op": op.name,
                                              "reason": why})

    def module():
        from .api import _out_slots
        attrs = {"inputs": list(g.in_slots),
                 "externals": [s.sid for s in g.slots if s.kind == "external"],
                 "outputs": list(_out_slots(g.out_tree)),
                 "peak_bytes": peak_bytes(g, allocs, frees), "steps": len(g.steps)}
        e.op("tessera.schedule", attrs=attrs, region=body)
    e.module(module)
    return e.text()


def peak_bytes(g, allocs, frees):
    """The most intermediate bytes alive at once during a replay."""
    mem = peak = 0
    for a, f in zip(allocs, frees):
        mem += sum(0 if g.slots[s].view else nbytes(g.slots[s]) for s in a)
        peak = max(peak, mem)
        mem -= sum(0 if g.slots[s].view else nbytes(g.slots[s]) for s in f)
    return peak
