"""Graph IR: the captured program as one `func.func` of tessera ops (generic MLIR).

One `"tessera.<op>"` per recorded op, in execution order, on tensor-typed SSA
values, with the user's source line as its location and `tessera.id` linking it
to the Schedule and Tile IR. Inputs are the function's arguments; externals
(parameters, constants) are `"tessera.external"` ops; Python scalars are
`"tessera.scalar"` ops; an in-place write yields a new SSA value for the written
tensor. Custom operators named "custom.<name>" print as
`"tessera.op"(...) {name = "<name>"}`, as the seed's section 7.1 writes them.
"""
from __future__ import annotations

from .mlir import Emitter, Raw, fn_type, scalar_type, tensor_type

CUSTOM_PREFIX = "custom."


def mlir_op(name):
    """(MLIR op name, extra attributes) for a recorded op name: the hook for custom ops."""
    if name.startswith(CUSTOM_PREFIX):
        return "tessera.op", {"name": name[len(CUSTOM_PREFIX):]}
    safe = "".join(c if c.isalnum() or c in "_." else "_" for c in name)
    return "tessera." + safe, {}


def slot_type(s):
    return tensor_type(s.shape, s.dtype)


def dump(g):
    e = Emitter()
    slots = g.slots
    ssa = {}
    args = []
    for i, sid in enumerate(g.in_slots):
        name = f"%arg{i}"
        if sid not in ssa:
            ssa[sid] = name
        args.append((name, slot_type(slots[sid])))
    outs = [sid for sid in _tensor_outs(g.out_tree)]
    counter = [0]

    def fresh(prefix="%v"):
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def value(sid):
        if sid not in ssa:  # never produced by a recorded op: show it as undefined
            r = fresh("%u")
            e.op("tessera.undefined", results=[r], result_types=[slot_type(slots[sid])],
                 attrs={"slot": sid})
            ssa[sid] = r
        return ssa[sid]

    def body():
        for s in slots:
            if s.kind == "external":
                r = fresh("%ext")
                attrs = {"slot": s.sid, "by_reference": True}
                t = s.tensor
                if t is not None and t.requires_grad:
                    attrs["requires_grad"] = True
                e.op("tessera.external", results=[r], result_types=[slot_type(s)], attrs=attrs)
                ssa[s.sid] = r
        for op in g.ops:
            operands, types = [], []
            for o in op.operands:
                if type(o) is tuple:
                    r = fresh("%s")
                    e.op("tessera.scalar", results=[r], result_types=[scalar_type(o[1])],
                         attrs={"value": o[1]})
                    operands.append(r)
                    types.append(scalar_type(o[1]))
                else:
                    operands.append(value(o))
                    types.append(slot_type(slots[o]))
            name, extra = mlir_op(op.name)
            attrs = {k: v for k, v in op.attrs.items() if k not in ("b", "xp", "backend")}
            attrs.update(extra)
            attrs["tessera.id"] = op.oid
            attrs["tessera.exec"] = op.kind
            out = slots[op.out]
            r = fresh()
            e.op(name, operands, types, [r], [slot_type(out)], attrs, site=op.site or ())
            ssa[op.out] = r
        vals = [value(sid) for sid in outs]
        e.op("func.return", vals, [slot_type(slots[s]) for s in outs])

    ftype = fn_type([t for _, t in args], [slot_type(slots[s]) for s in outs])

    def module():
        e.op("func.func", attrs={"sym_name": g.name, "function_type": Raw(ftype)},
             region=(args, body))
    e.module(module)
    return e.text()


def _tensor_outs(tree):
    from .api import _out_slots
    return list(_out_slots(tree))
