"""The lazy fusion buffer: elementwise ops and their reductions become nodes of a
DAG of `LazyOp`s instead of computed buffers, and a group is computed as one
generated kernel when its value is needed.

A lazy tensor holds its `LazyOp`; the op holds weak references to every tensor
that shares it. At realization the group's outputs are the requested roots plus
every interior node that some live tensor still holds (a user variable, a value
saved for backward): those are written by the same multi-output kernel, and
intermediates that nobody holds are never allocated. Reductions end a group;
interior nodes of another shape are realized first as groups of their own.
"""
from __future__ import annotations

import weakref

from .._config import STATE
from .._srcloc import user_site
from ..tensor import Tensor, _new

# A group larger than this is realized at creation: generated kernels with
# hundreds of expressions compile slowly and spill registers on the GPU.
MAX_GROUP_NODES = 64
MAX_GROUP_INPUTS = 24

_NO_LEAVES = frozenset()
_REDUCE_OPS = {"sum": "reduce_sum", "prod": "reduce_prod", "max": "reduce_max", "min": "reduce_min"}


class LazyOp:
    __slots__ = ("op", "dtype", "in_dtype", "srcs", "arg", "shape", "device", "buf", "refs",
                 "nodes", "leaves", "site", "axes", "__weakref__")

    def __init__(self, op, dtype, in_dtype, srcs, arg, shape, device, axes=None):
        self.op = op
        self.dtype = dtype
        self.in_dtype = in_dtype
        self.srcs = srcs
        self.arg = arg
        self.shape = shape
        self.device = device
        self.buf = None
        self.refs = []
        self.axes = axes
        # Size bookkeeping for the group limits, kept incrementally so that an op
        # costs O(its sources), not a walk of the pending DAG. `nodes` over-counts
        # shared subexpressions (a safe direction for a limit); `leaves` is exact.
        n = 1
        leaves = _NO_LEAVES
        for s in srcs:
            if type(s) is LazyOp and s.buf is None:
                n += s.nodes
                leaves = leaves | s.leaves
            elif type(s) is Tensor or type(s) is LazyOp:
                leaves = leaves | {id(s)}
        self.nodes = n
        self.leaves = leaves
        self.site = (user_site(3) if STATE.debug or _explain.enabled or STATE.check_numerics
                     else None)

    @property
    def is_reduce(self):
        return self.axes is not None

    def realize(self, reason="value needed"):
        if self.buf is None:
            realize_group([self], reason)
        return self.buf

    def alive(self):
        for r in self.refs:
            if r() is not None:
                return True
        return False

    def __repr__(self):
        state = "realized" if self.buf is not None else "pending"
        return f"<LazyOp {self.op} {self.dtype.name}{list(self.shape)} {state}>"


def attach(t, lop):
    """Make tensor `t` a holder of `lop` (used by detach, so saved values count)."""
    t._lazy = lop
    lop.refs.append(weakref.ref(t))


def _src_of(a):
    if type(a) is Tensor:
        if a._buf is None:
            return a._lazy
        return a
    return a


def lazy_elementwise(op, args, in_dt, out_dt, shape, device, arg):
    srcs = tuple(_src_of(a) for a in args)
    lop = LazyOp(op, out_dt, in_dt, srcs, arg, shape, device)
    t = _new(None, shape, out_dt, device)
    attach(t, lop)
    _PENDING.add(lop)
    if lop.nodes > MAX_GROUP_NODES or len(lop.leaves) > MAX_GROUP_INPUTS:
        realize_group([lop], "group size limit")
    return t


def lazy_reduce(name, x, axes, out_dt, oshape):
    """A pending reduction of the lazy tensor `x` over `axes`; `oshape` is the
    result's shape (with or without the reduced axes kept)."""
    lop = LazyOp(_REDUCE_OPS[name], out_dt, out_dt, (_src_of(x),), None, oshape,
                 x.device, axes=tuple(axes))
    t = _new(None, oshape, out_dt, x.device)
    attach(t, lop)
    _PENDING.add(lop)
    return t


def lazy_matmul(a, b, out_dt, shape, device, fwd):
    """A pending matrix product (fusion mode "aggressive"): `fwd(buf_a, buf_b)` computes
    it.  A group that reads it as act(matmul + bias) is matched by `epilogue.match`
    and, on CUDA, runs as one GEMM launch with the epilogue; elsewhere the product
    is realized first (BLAS) and the epilogue is one fused kernel."""
    lop = LazyOp("matmul", out_dt, out_dt, (_src_of(a), _src_of(b)), fwd, shape, device)
    lop.nodes, lop.leaves = 1, frozenset({id(lop)})  # a group boundary, not an expression
    t = _new(None, shape, out_dt, device)
    attach(t, lop)
    _PENDING.add(lop)
    return t


def _source_buf(s, reason):
    """The buffer of a group's source (a Tensor or a LazyOp), realizing a pending one
    first, in its own group: a matmul's operands and an epilogue's bias."""
    if type(s) is LazyOp:
        if s.buf is None:
            realize_group([s], reason)
        return s.buf
    return s.data


def _realize_matmul(m):
    m.buf = m.arg(*[_source_buf(s, "matmul operand") for s in m.srcs])
    m.srcs = ()


# ---------------------------------------------------------------------------
class _Explain:
    """Records of the last realizations, for `tessera.fusion.explain()`."""

    def __init__(self):
        self.enabled = False
        self.records = []
        self.limit = 50

    def add(self, rec):
        self.records.append(rec)
        if len(self.records) > self.limit:
            del self.records[0]


_explain = _Explain()


def realize_group(roots, reason):
    """Compute the pending DAG under `roots` as one kernel (after realizing, as
    groups of their own, the reductions and other-shaped nodes it reads)."""
    roots = [r for r in roots if r.buf is None]
    for r in roots:
        if r.op == "matmul":
            _realize_matmul(r)
    roots = [r for r in roots if r.buf is None]
    if not roots:
        return
    # Group by shape/kind: elementwise roots of one shape go together; reduce
    # roots with the same source shape and axes go together.
    by_key = {}
    for r in roots:
        k = (r.shape, r.axes, r.srcs[0].shape if r.axes is not None else None)
        by_key.setdefault(k, []).append(r)
    for group in by_key.values():
        _realize_same_shape(group, reason)


def _row_reduce(s, shape):
    """A pending reduction over the last axis of a `shape` value, kept as (1,)-wide rows:
    under mode("aggressive") it stays inside the group as a row-program node."""
    return (s.axes is not None and len(shape) >= 1 and s.axes == (len(shape) - 1,)
            and s.shape == shape[:-1] + (1,) and s.srcs and getattr(s.srcs[0], "shape", None) == shape)


def _boundary_reason(s, shape, consumer):
    if s.axes is not None:
        why = (f"boundary: {s.op}{list(s.shape)} over axes {list(s.axes)} (a reduction; "
               f"mode('aggressive') fuses last-axis keepdims reductions)")
    else:
        why = f"boundary: {s.op} of shape {list(s.shape)} read by {consumer.op}{list(shape)}"
    return why


def _held_reason(nodes):
    names = ", ".join(f"{n.op}{list(n.shape)}" + (f" made at {_fmt(n.site)}" if n.site else "")
                      for n in nodes[:3])
    return f"held by a live tensor ({names}{', ...' if len(nodes) > 3 else ''})"


def _fmt(site):
    from .._srcloc import fmt_site
    return fmt_site(site)


def _realize_same_shape(roots, reason):
    is_reduce = roots[0].axes is not None
    shape = roots[0].srcs[0].shape if is_reduce else roots[0].shape
    row_ok = STATE.fusion_mode == "aggressive" and not is_reduce and len(shape) >= 1
    rowshape = shape[:-1] + (1,) if row_ok else None
    mms = []
    # 1. walk the DAG; realize boundaries (reductions, other shapes) first
    order, seen = [], set()

    def visit(n):
        stack = [(n, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen or node.buf is not None:
                continue  # (a boundary realized below may have computed it already)
            seen.add(id(node))
            stack.append((node, True))
            for s in node.srcs:
                if type(s) is LazyOp and s.buf is None:
                    if s.op == "matmul":
                        if s not in mms:  # decided below: absorbed epilogue or realized first
                            mms.append(s)
                    elif row_ok and (_row_reduce(s, shape) or (
                            s.axes is None and s.shape == rowshape and not s.alive())):
                        # aggressive: the row program keeps last-axis reductions and the
                        # per-row values computed from them (mean = sum / n, ...)
                        if id(s) not in seen:
                            stack.append((s, False))
                    elif s.axes is not None or s.shape != shape:
                        _realize_same_shape([s], _boundary_reason(s, shape, node))
                    elif id(s) not in seen:
                        stack.append((s, False))
    for r in roots:
        if is_reduce:
            src = r.srcs[0]
            if type(src) is LazyOp and src.op == "matmul" and src.buf is None:
                _realize_matmul(src)
            if type(src) is LazyOp and src.buf is None:
                if src.alive():
                    # someone holds the reduced value's input: it must exist anyway
                    _realize_same_shape([src], _held_reason([src]))
                else:
                    visit(src)
        else:
            visit(r)
    if is_reduce:
        outputs = list(roots)
    else:
        root_ids = {id(r) for r in roots}
        outputs = list(roots) + [n for n in order if id(n) not in root_ids and n.alive()]

    # interior nodes of a reduction group that are held must be realized first
    if is_reduce:
        held = [n for n in order if n.alive()]
        if held:
            _realize_same_shape(held, _held_reason(held))
            order = []
            seen.clear()
            for r in roots:
                src = r.srcs[0]
                if type(src) is LazyOp and src.buf is None:
                    visit(src)
    # a boundary realized during the walk may have computed some of these (a held
    # interior node of a reduction group): they are neither computed nor outputs here
    order = [n for n in order if n.buf is None]
    outputs = [n for n in outputs if n.buf is None]
    if not outputs:
        return
    device = roots[0].device
    backend = device.backend
    epi = None
    if mms:
        if STATE.fusion_mode == "aggressive":
            from .epilogue import match
            epi = match(outputs, order)
        run_epi = None
        if epi is not None:
            from .epilogue import runner
            run_epi = runner(backend, epi)
        if run_epi is not None:
            _run_epilogue(epi, outputs, order, run_epi, reason)
            return
        for m in mms:
            _realize_matmul(m)
    sinks = STATE.event_sinks
    if sinks:  # begin mark: the profiler times the run, check_numerics keeps the group
        ev = {"outputs": outputs, "order": order, "shape": shape, "device": device,
              "reduce": is_reduce}
        for s in sinks:
            s("fused_start", ev)
    bufs, info = backend.run_fused(outputs, order, shape, is_reduce)
    for lop, buf in zip(outputs, bufs):
        # reductions come back with keepdims; the op may have asked for them dropped
        lop.buf = buf if tuple(buf.shape) == lop.shape else buf.reshape(lop.shape)
    # Outputs drop their sources (the value lives in the buffer now). Interior
    # nodes keep theirs: another pending group may still read through them.
    for lop in outputs:
        lop.srcs = ()
    sinks = STATE.event_sinks
    if sinks or _explain.enabled:
        rec = {"ops": [n.op for n in order] + ([r.op for r in roots] if is_reduce else []),
               "outputs": len(outputs), "shape": shape, "reason": reason,
               "site": user_site(2), "kernel": info.get("kernel"), "info": info}
        if epi is not None:  # CPU: BLAS ran first; on CUDA this group is the GEMM's epilogue
            rec["epilogue"] = {"activation": epi[2], "absorbed_on_cuda": True}
        if _explain.enabled:
            _explain.add(rec)
        for s in sinks:
            s("fused", rec)


def _run_epilogue(epi, outputs, order, run_epi, reason):
    """One GEMM launch with bias and activation for the matched group (CUDA)."""
    mm, bias, act = epi
    a, b = (_source_buf(s, "matmul operand") for s in mm.srcs)  # as _realize_matmul
    bb = _source_buf(bias, "epilogue bias")
    out = outputs[0]
    out.buf = run_epi(a, b, bb.reshape(-1), act, out.dtype)
    out.srcs = ()
    if _explain.enabled:
        _explain.add({"ops": ["matmul"] + [n.op for n in order], "outputs": 1, "shape": out.shape,
                      "reason": reason, "site": user_site(3), "kernel": f"matmul+bias+{act}",
                      "info": {}, "epilogue": {"activation": act, "absorbed_on_cuda": True}})


def realize(*tensors):
    """Compute every pending tensor given, together (one kernel per group)."""
    lops = [t._lazy for t in tensors if type(t) is Tensor and t._buf is None]
    if lops:
        realize_group(lops, "explicit realize")
    for t in tensors:
        if type(t) is Tensor and t._buf is None:
            t._buf = t._lazy.buf
    return tensors[0] if len(tensors) == 1 else tensors


_PENDING = weakref.WeakSet()


def flush_pending(reason):
    """Realize every pending group (before an in-place write, at a hint's exit)."""
    if not _PENDING:
        return
    live = [lop for lop in list(_PENDING) if lop.buf is None and lop.alive()]
    _PENDING.clear()
    if live:
        realize_group(live, reason)
