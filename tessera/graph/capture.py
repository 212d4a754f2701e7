"""Graph capture: run a function once and record what it did from the event stream.

The `Recorder` listens to the dispatch points (`op`, `fused_start`/`fused`,
`inplace`, `copy`) and turns every computation into a replay *step* over numbered
buffer *slots*:

- input slots: the tensors among the function's arguments;
- external slots: buffers the function read that no recorded op produced
  (parameters, closed-over tensors, constants made by creation ops). They are
  kept by reference, so in-place updates (an optimizer step) persist across replays;
- intermediate slots: produced by a step.

A buffer is identified by the identity of its array object (`detach` and saved
tensors share it), a pending lazy value by its `LazyOp`. Every recorded op also
becomes an `OpRec` (name, operands, shape, dtype, source line, attributes) for the
Graph IR; a deferred op read before its own `op` event arrives (a group-size
flush) is recorded when first read and gets its source line from the event.
"""
from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np

from .._config import STATE
from .._srcloc import user_site
from ..errors import TesseraError
from ..tensor import Tensor


class CaptureError(TesseraError, RuntimeError):
    """What was recorded cannot be replayed faithfully."""


class CaptureWarning(UserWarning):
    """The capture recorded something that replay will not keep up to date."""


class Slot:
    __slots__ = ("sid", "kind", "shape", "dtype", "device", "buf", "tensor", "label", "view")

    def __init__(self, sid, kind, shape, dtype, device, buf=None, tensor=None, label=""):
        self.sid, self.kind, self.shape, self.dtype, self.device = sid, kind, shape, dtype, device
        self.buf, self.tensor, self.label, self.view = buf, tensor, label, False


class OpRec:
    """One op of the Graph IR. `operands`: slot ids or ("scalar", value)."""
    __slots__ = ("oid", "name", "operands", "out", "site", "attrs", "kind")

    def __init__(self, oid, name, operands, out, site, attrs, kind):
        self.oid, self.name, self.operands, self.out = oid, name, operands, out
        self.site, self.attrs, self.kind = site, attrs, kind


class Step:
    """One replay step. `kind`: op | ew | fused | inplace | copy. `ins`/`outs`: slot
    ids; `ids`: the OpRec ids it computes; `info`: what the Schedule/Tile IR print."""
    __slots__ = ("kind", "ins", "outs", "ids", "info")

    def __init__(self, kind, ins, outs, ids, info):
        self.kind, self.ins, self.outs, self.ids, self.info = kind, tuple(ins), tuple(outs), ids, info


_LAZY_NAMES = {"reduce_sum": "sum", "reduce_prod": "prod", "reduce_max": "max",
               "reduce_min": "min"}
_PLAIN = (bool, int, float, complex, str, type(None))


def closure_attrs(fn):
    """Plain values a `fwd` closes over (axes, keepdims, shapes, dtypes): the op's
    attributes in the Graph IR, found without the op having to declare them."""
    out = {}
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None)
    if code is None or not cells:
        return out
    for name, cell in zip(code.co_freevars, cells):
        try:
            v = cell.cell_contents
        except ValueError:
            continue
        if isinstance(v, _PLAIN) or (isinstance(v, tuple) and all(
                isinstance(e, (bool, int, float, type(None))) for e in v)):
            out[name] = v
        elif type(v).__name__ == "DType":
            out[name] = v.name
    return out


class Recorder:
    """The event sink used while `capture` runs the function."""

    def __init__(self):
        self.slots: list[Slot] = []
        self.ops: list[OpRec] = []
        self.steps: list[Step] = []
        self.key2slot: dict = {}
        self.lazy2op: dict = {}      # id(LazyOp) -> OpRec id
        self.keep: list = []         # every object whose id() is a key stays alive
        self.groups: list = []       # fused groups between fused_start and fused
        self.ext_tensors: dict = {}  # slot id -> the Tensor an external came from
        self.made: list = []         # (weakref to a tensor an op made, its slot id)

    # -- slots -----------------------------------------------------------------
    def new_slot(self, kind, t_or_lop, key, buf=None, tensor=None, label=""):
        s = Slot(len(self.slots), kind, tuple(t_or_lop.shape), t_or_lop.dtype,
                 t_or_lop.device, buf, tensor, label)
        self.slots.append(s)
        if key is not None:
            self.key2slot[key] = s.sid
        return s.sid

    def add_input(self, t, label):
        buf = t.data
        self.keep.append(buf)
        return self.new_slot("input", t, id(buf), label=label)

    def slot_of(self, t):
        """Slot of a tensor operand; an unknown realized buffer becomes an external."""
        buf = t._buf
        if buf is None:
            lop = t._lazy
            if lop.buf is None:
                return self.lazy_slot(lop)
            buf = lop.buf
        sid = self.key2slot.get(id(buf))
        if sid is None:
            self.keep.append(buf)
            sid = self.new_slot("external", t, id(buf), buf=buf, tensor=t)
            self.ext_tensors[sid] = t
        return sid

    def lazy_slot(self, lop):
        """Slot (and OpRec) of a pending LazyOp, recording ones made without an event."""
        sid = self.key2slot.get(("L", id(lop)))
        if sid is not None:
            return sid
        if lop.buf is not None:  # computed before the capture: an external
            sid = self.key2slot.get(id(lop.buf))
            if sid is None:
                self.keep.append(lop.buf)
                sid = self.new_slot("external", lop, id(lop.buf), buf=lop.buf)
            return sid
        operands = [self._operand(s) for s in lop.srcs]
        self.keep.append(lop)
        sid = self.new_slot("intermediate", lop, ("L", id(lop)))
        attrs = _lazy_attrs(lop)
        # no event carried this op: the site is the user line that first needed it
        name = _LAZY_NAMES.get(lop.op, lop.op)
        oid = self._add_op(name, operands, sid, lop.site or user_site(3), attrs, "lazy")
        self.lazy2op[id(lop)] = oid
        return sid

    def _operand(self, s):
        from ..fusion.lazy import LazyOp
        if type(s) is LazyOp:
            return self.lazy_slot(s)
        if type(s) is Tensor:
            return self.slot_of(s)
        return ("scalar", s)

    def _add_op(self, name, operands, out, site, attrs, kind):
        oid = len(self.ops)
        self.ops.append(OpRec(oid, name, list(operands), out, site, attrs, kind))
        return oid

    def _sched(self):
        th = STATE.tile_hint
        return {"fusion_mode": STATE.fusion_mode, "tile_hint": th}

    # -- the sink ----------------------------------------------------------------
    def __call__(self, kind, payload):
        h = getattr(self, "_on_" + kind, None)
        if h is not None:
            h(payload)

    def _on_op(self, p):
        site = user_site(2)
        if len(p) == 4:  # apply_op: (name, inputs, out, fwd)
            name, inputs, out, fwd = p
            ins = [self.slot_of(t) for t in inputs if t is not None]
            buf = out._buf
            self.keep.append(buf)
            sid = self.new_slot("intermediate", out, id(buf))
            self.slots[sid].view = isinstance(buf, np.ndarray) and not buf.flags.owndata
            self.made.append((weakref.ref(out), sid))
            oid = self._add_op(name, ins, sid, site, closure_attrs(fwd), "op")
            info = dict(self._sched(), fwd=fwd, device=out.device)
            self.steps.append(Step("op", ins, (sid,), [oid], info))
            return
        name, args, out = p
        operands = [self.slot_of(a) if type(a) is Tensor else ("scalar", a) for a in args]
        self.made.append((weakref.ref(out), None))
        if out._buf is None:  # deferred into the fusion buffer: a fused step computes it
            lop = out._lazy
            oid = self.lazy2op.get(id(lop))
            if oid is not None:  # already read (a group-size flush ran it): fix its line
                self.ops[oid].site = site
                return
            self.keep.append(lop)
            sid = self.new_slot("intermediate", out, ("L", id(lop)))
            self.lazy2op[id(lop)] = self._add_op(name, operands, sid, site, _lazy_attrs(lop),
                                                 "lazy")
            return
        buf = out._buf
        self.keep.append(buf)
        sid = self.new_slot("intermediate", out, id(buf))
        oid = self._add_op(name, operands, sid, site, {}, "ew")
        from ..ops.elementwise import OPS
        key = tuple(a.dtype if type(a) is Tensor else type(a) for a in args)
        out_dt, in_dt, _ = OPS[name].cache[key]  # (out, in, fusable): see elementwise.apply
        argspec = [(o, a.dtype) if type(a) is Tensor else ("scalar", a)
                   for o, a in zip(operands, args)]
        info = dict(self._sched(), name=name, args=argspec, in_dt=in_dt, out_dt=out_dt,
                    device=out.device)
        self.steps.append(Step("ew", [o for o in operands if type(o) is int], (sid,), [oid], info))

    def _on_fused_start(self, ev):
        from ..fusion import execute
        outputs, order, shape = ev["outputs"], ev["order"], ev["shape"]
        out_slots = [self.lazy_slot(o) for o in outputs]
        for n in order:
            self.lazy_slot(n)
        ids = [self.lazy2op[id(n)] for n in order] + \
              [self.lazy2op[id(o)] for o in outputs if o.axes is not None]
        roots, inputs = execute.build_ir(outputs, order, shape)
        leaves = _leaf_order(outputs, order)
        if len(leaves) != len(inputs):
            raise CaptureError(f"[graph.capture] fused group: {len(leaves)} leaves found, "
                               f"build_ir made {len(inputs)} inputs")
        in_slots, pads = [], []
        for src, arr in zip(leaves, inputs):
            in_slots.append(self._operand(src))
            sshape = tuple(src.shape)
            pads.append(None if sshape == tuple(shape) else
                        (1,) * (len(shape) - len(sshape)) + sshape)
        info = dict(self._sched(), roots=roots, shape=tuple(shape), pads=pads,
                    device=ev["device"], reduce=ev["reduce"], probe=inputs,
                    out_shapes=[tuple(o.shape) for o in outputs])
        step = Step("fused", in_slots, out_slots, ids, info)
        self.groups.append((outputs, step))

    def _on_fused(self, rec):
        if not self.groups:
            return
        outputs, step = self.groups.pop()
        for lop, sid in zip(outputs, step.outs):
            self.keep.append(lop.buf)
            self.key2slot[id(lop.buf)] = sid
        step.info.update(reason=rec.get("reason"), kernel=rec.get("kernel"),
                         run_info=rec.get("info"), site=rec.get("site"))
        from .kernels import describe_fused
        step.info.update(describe_fused(step.info))
        self.steps.append(step)

    def _on_inplace(self, p):
        if len(p) < 4:
            raise CaptureError(f"[graph.capture] in-place '{p[0]}' emitted no write function: "
                               "it cannot be replayed")
        name, t, write, srcs = p[:4]
        target = self.slot_of(t)
        ins = [self.slot_of(s) for s in srcs]
        site = user_site(2)
        # the Graph IR gives the written tensor a new SSA value (same slot)
        oid = self._add_op("assign" if name != "setitem" else "setitem", [target] + ins,
                           target, site, {"op": name}, "inplace")
        info = dict(self._sched(), write=write, name=name, device=t.device)
        self.steps.append(Step("inplace", [target] + ins, (), [oid], info))

    def _on_copy(self, p):
        src, dst = p
        ins = [self.slot_of(src)]
        self.keep.append(dst._buf)
        sid = self.new_slot("intermediate", dst, id(dst._buf))
        oid = self._add_op("to_device", ins, sid, user_site(2),
                           {"device": str(dst.device)}, "copy")
        info = dict(self._sched(), src_device=src.device, device=dst.device, dtype=dst.dtype)
        self.steps.append(Step("copy", ins, (sid,), [oid], info))


def _lazy_attrs(lop):
    """Graph IR attributes of a deferred op: a reduction's axes, a cast's target."""
    attrs = {"axes": tuple(lop.axes)} if lop.axes is not None else {}
    if lop.op == "cast":
        attrs["to"] = lop.dtype.name
    return attrs


def _leaf_order(outputs, order):
    """The fused group's realized sources, in the order `execute.build_ir` numbers
    its input slots (first use, deduplicated by buffer)."""
    from ..fusion.lazy import LazyOp
    seen, leaves = set(), []

    def visit(s):
        if type(s) is LazyOp and s.buf is None:
            return
        if type(s) is LazyOp or type(s) is Tensor:
            buf = s.buf if type(s) is LazyOp else s.data
            if id(buf) not in seen:
                seen.add(id(buf))
                leaves.append(s)
    for lop in order:
        for s in lop.srcs:
            visit(s)
    for o in outputs:
        if o.axes is not None:
            visit(o.srcs[0])
    return leaves


def warn_escaped(rec, kept_slots, kept_objs):
    """Warn about tensors made inside the capture that a dict or list still holds
    after it (optimizer state rebound out of place, a module attribute, a global):
    replay computes new values for them but cannot rebind the Python references."""
    gc.collect()
    seen = set()
    for ref, sid in rec.made:
        t = ref()
        if t is None or id(t) in kept_objs or id(t) in seen:
            continue
        seen.add(id(t))
        if sid is None:
            try:
                sid = rec.slot_of(t)
            except Exception:
                continue
        if sid in kept_slots or rec.slots[sid].kind != "intermediate":
            continue
        holders = [r for r in gc.get_referrers(t) if isinstance(r, (dict, list))]
        if not holders:
            continue
        op = next((o for o in rec.ops if o.out == sid), None)
        where = ""
        if op is not None and op.site:
            where = f" (made by '{op.name}' at {op.site[0]}:{op.site[1]})"
        warnings.warn(
            f"[graph.capture] a tensor of shape {t.shape} {t.dtype.name} computed inside the "
            f"captured function is still held by a {type(holders[0]).__name__} after it "
            f"returned{where}. Replays compute its new value but do not rebind that "
            "reference, so a later replay (or your code) reads the capture-time value: this "
            "is what happens to optimizer state updated out of place (m = m * b + g) and "
            "Python step counters. Update such state in place (m *= b; m += g), keep "
            "counters in tensors, or return the tensor as an output.",
            CaptureWarning, stacklevel=3)
        return
