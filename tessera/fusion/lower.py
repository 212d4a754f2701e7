"""Lowering a fused group of `Node`s to a loop IR, and the per-call layout analysis.

Two steps, split so the per-call cost is small:
- `prepare(outputs)` (cached per outputs tuple): topological order, constants turned
  into runtime parameters, a structural signature with a stable short id.
- `analyze(prep, arrays, shape)` (every call): element strides of each operand, dims
  of size 1 dropped and adjacent dims coalesced (as NumPy's iterator does), and the
  structural key `(sig id, kind, ndim, reduced dims, per-input stride classes)`.
  Concrete sizes are not in the key, so a new batch size reuses the kernel.
`lower(prep, layout)` then builds the `LoopIR` that the renderers print.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .ir import DTYPES, REDUCE_OPS, Node, toposort

# Stride classes of an input along one (coalesced) dim, part of the kernel key.
BCAST, UNIT, STRIDED = 0, 1, 2
# Hoisting levels: computed once per kernel, once per row/output, once per element.
KERNEL, ROW, ELEM = 0, 1, 2


@dataclass(frozen=True)
class Stmt:
    """`v{var} = op(v{args}...)`; op may also be "load" (arg = input slot) or "param"."""
    var: int
    op: str
    dtype: str
    args: tuple
    arg: object
    level: int
    src_dtype: str | None = None  # for casts and float->bool predicates


@dataclass(frozen=True)
class LoopIR:
    name: str
    key: tuple
    kind: str                  # "elementwise" | "reduce" | "row" (see render_row)
    ndim: int                  # coalesced iteration dims (>= 1)
    reduced: tuple             # per dim: True if reduced (all False for elementwise)
    nin: int                   # number of input slots (pointer args)
    in_dtypes: tuple           # per slot (None if unused)
    in_classes: tuple          # per slot: per dim stride class (None if unused)
    params: tuple              # dtype of each runtime scalar parameter
    stmts: tuple               # topologically ordered, levels non-decreasing per var deps
    outs: tuple                # (var, dtype, reduce op or None) per output
    idx64: bool = True         # CUDA: 64-bit indexing needed


@dataclass
class Prepared:
    outputs: tuple
    order: list                # toposort of the DAG (reduce roots included)
    consts: list               # const nodes in parameter order
    slots: tuple               # input slots used
    in_dtype: dict             # slot -> dtype
    kind: str
    axes: tuple | None         # reduced axes (reduce groups)
    sig: tuple
    sig_hash: str
    label: str                 # readable part of kernel names
    kernels: dict              # layout key -> compiled artefact (filled by runtimes)


_prep_cache: dict = {}


def prepare(outputs) -> Prepared:
    outputs = tuple(outputs)
    p = _prep_cache.get(outputs)
    if p is not None:
        return p
    if not outputs:
        raise ValueError("[fusion] a kernel needs at least one output")
    red = [o.op in REDUCE_OPS for o in outputs]
    order = toposort(outputs)
    axes, kind = None, "elementwise"
    rnodes = [n for n in order if n.op in REDUCE_OPS]
    if rnodes and all(red) and not any(n.op in REDUCE_OPS for o in outputs for n in toposort(o.srcs)):
        kind, axes = "reduce", outputs[0].arg
        if any(o.arg != axes for o in outputs):
            raise ValueError("[fusion] reduction outputs must reduce the same axes")
    elif rnodes:
        # a row program: reductions over one (the last) axis feeding elementwise nodes
        # or other reductions of the same row; checked against the shape in `analyze`
        kind, axes = "row", rnodes[0].arg
        if len(axes) != 1 or any(n.arg != axes for n in rnodes):
            raise ValueError("[fusion] a row program reduces one axis, the last, in every "
                             f"reduction; got {sorted({n.arg for n in rnodes})}")
    consts = [n for n in order if n.op == "const"]
    cidx = {id(n): i for i, n in enumerate(consts)}
    pos = {id(n): i for i, n in enumerate(order)}
    in_dtype: dict = {}
    for n in order:
        if n.op == "input":
            if in_dtype.setdefault(n.arg, n.dtype) != n.dtype:
                raise TypeError(f"[fusion] input slot {n.arg} used with dtypes "
                                f"{in_dtype[n.arg]} and {n.dtype}")
    sig = tuple((n.op, n.dtype, tuple(pos[id(s)] for s in n.srcs),
                 ("p", cidx[id(n)]) if n.op == "const" else n.arg) for n in order)
    sig = (sig, tuple(pos[id(o)] for o in outputs))
    sig_hash = hashlib.sha1(repr(sig).encode()).hexdigest()[:8]
    label = _label(order, outputs, len(in_dtype))
    p = Prepared(outputs, order, consts, tuple(sorted(in_dtype)), in_dtype,
                 kind, axes, sig, sig_hash, label, {})
    if len(_prep_cache) > 4096:
        _prep_cache.clear()
    _prep_cache[outputs] = p
    return p


_SHORT = {"multiply": "mul", "subtract": "sub", "divide": "div", "negative": "neg",
          "maximum": "max", "minimum": "min", "reduce_sum": "sum", "reduce_prod": "prod",
          "reduce_max": "rmax", "reduce_min": "rmin", "floor_divide": "fdiv",
          "remainder": "rem", "reciprocal": "recip"}


def _label(order, outputs, nin) -> str:
    ops = []
    for n in order:
        if n.op not in ("input", "const") and (_SHORT.get(n.op, n.op) not in ops):
            ops.append(_SHORT.get(n.op, n.op))
    if len(ops) > 5:
        ops = ops[:4] + [f"{len(ops) - 4}more"]
    dts = "_".join(sorted({DTYPES[o.dtype].short for o in outputs}))
    return "_".join(ops or ["copy"]) + f"_{dts}_{nin}in"


@dataclass
class Layout:
    key: tuple
    shape: tuple        # coalesced
    strides: list       # per used slot: coalesced element strides
    reduced: tuple
    out_shape: tuple    # numpy (keepdims) shape of every output
    n: int
    out_shapes: tuple = ()  # per output, where they differ (row programs)


def analyze(p: Prepared, arrays, shape) -> Layout:
    """Coalesced layout of this call and the structural kernel key."""
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    if p.axes is not None:
        if any(a < 0 or a >= nd for a in p.axes):
            raise ValueError(f"[fusion] reduce axes {p.axes} out of range for shape {shape}")
        if p.kind == "row" and p.axes != (nd - 1,):
            raise ValueError(f"[fusion] a row program reduces the last axis; got {p.axes} "
                             f"for shape {shape}")
        red = tuple(d in p.axes for d in range(nd))
        out_shape = tuple(1 if r else s for s, r in zip(shape, red))
    else:
        red = (False,) * nd
        out_shape = shape
    ops_strides = []
    for slot in p.slots:
        a = arrays[slot]
        if a.shape != shape:
            raise ValueError(f"[fusion] input {slot} has shape {a.shape}, the iteration shape "
                             f"is {shape}: broadcast it first (numpy.broadcast_to)")
        isz = a.itemsize
        ops_strides.append([s // isz for s in a.strides])
    # C-contiguous output strides (0 along reduced dims: all of them hit one output)
    ostr, acc = [0] * nd, 1
    for d in range(nd - 1, -1, -1):
        if not red[d]:
            ostr[d] = acc
            acc *= shape[d]
    out_shapes = ()
    if p.kind == "row":  # elementwise outputs are whole, reductions per row (keepdims)
        out_shapes = tuple(out_shape if o.op in REDUCE_OPS else shape for o in p.outputs)
        out_shape = shape
    ops_strides.append(ostr)
    # drop size-1 dims, then merge neighbours where every operand is contiguous across them
    gs, gr, gst = [], [], [[] for _ in ops_strides]
    for d in range(nd):
        if shape[d] == 1:
            continue
        if gs and gr[-1] == red[d] and all(st[-1] == s[d] * shape[d] for st, s in zip(gst, ops_strides)):
            gs[-1] *= shape[d]
            for st, s in zip(gst, ops_strides):
                st[-1] = s[d]
            continue
        gs.append(shape[d])
        gr.append(red[d])
        for st, s in zip(gst, ops_strides):
            st.append(s[d])
    if not gs or (p.axes is not None and not any(gr)):
        # a scalar iteration, or a reduction over size-1 axes only: one virtual reduced dim
        gs.append(1)
        gr.append(p.axes is not None)
        for st in gst:
            st.append(0)
    n = 1
    for s in shape:
        n *= s
    cls = []
    last = len(gs) - 1
    for st in gst[:-1]:
        cls.append(tuple(BCAST if s == 0 else (UNIT if (d == last and s == 1) else STRIDED)
                         for d, s in enumerate(st)))
    span = sum(abs(s) * (g - 1) for st in gst for s, g in zip(st, gs))
    idx64 = max(n, span) >= 2**31 - 2**26
    key = (p.sig_hash, len(gs), tuple(gr), tuple(cls), idx64)
    return Layout(key, tuple(gs), gst[:-1], tuple(gr), out_shape, n, out_shapes)


def lower(p: Prepared, lay: Layout) -> LoopIR:
    """The loop IR for this group under this layout key."""
    nd = len(lay.shape)
    _, _, reduced, classes, idx64 = lay.key
    cls_of = dict(zip(p.slots, classes))
    nin = (max(p.slots) + 1) if p.slots else 0
    var: dict = {}
    stmts: list = []
    cidx = {id(n): i for i, n in enumerate(p.consts)}
    for n in p.order:
        if n.op in REDUCE_OPS:
            if p.kind == "row":  # the row's reduced value, known after its pass
                st = Stmt(len(stmts), n.op, n.dtype, (var[id(n.srcs[0])],), n.arg, ROW)
                var[id(n)] = st.var
                stmts.append(st)
            continue
        if n.op == "const":
            st = Stmt(len(stmts), "param", n.dtype, (), cidx[id(n)], KERNEL)
        elif n.op == "input":
            c = cls_of[n.arg]
            if p.kind != "elementwise":
                moving = [c[d] != BCAST for d in range(nd) if reduced[d]]
                lvl = ELEM if any(moving) else (ROW if any(x != BCAST for x in c) else KERNEL)
            else:
                lvl = KERNEL if all(x == BCAST for x in c) else (ROW if c[-1] == BCAST else ELEM)
            st = Stmt(len(stmts), "load", n.dtype, (), n.arg, lvl)
        else:
            args = tuple(var[id(s)] for s in n.srcs)
            lvl = max(stmts[a].level for a in args)
            sdt = n.srcs[-1].dtype if n.op in ("cast", "isnan", "isinf", "isfinite", "signbit",
                                                "equal", "not_equal", "less", "less_equal",
                                                "greater", "greater_equal") else None
            st = Stmt(len(stmts), n.op, n.dtype, args, n.arg, lvl, sdt)
        var[id(n)] = st.var
        stmts.append(st)
    outs = []
    for o in p.outputs:
        if o.op in REDUCE_OPS and p.kind == "row":
            outs.append((var[id(o)], o.dtype, "row"))
        elif o.op in REDUCE_OPS:
            outs.append((var[id(o.srcs[0])], o.dtype, o.op))
        else:
            outs.append((var[id(o)], o.dtype, None))
    name = f"ts_fused_{p.label}_{_short_hash(lay.key)}"
    return LoopIR(name, lay.key, p.kind, nd, tuple(reduced), nin,
                  tuple(p.in_dtype.get(s) for s in range(nin)),
                  tuple(cls_of.get(s) for s in range(nin)),
                  tuple(n.dtype for n in p.consts), tuple(stmts), tuple(outs), idx64)


def _short_hash(key) -> str:
    return hashlib.sha1(repr(key).encode()).hexdigest()[:6]


def param_values(p: Prepared):
    """(float params, int params) for the C/CUDA calls: value rounded to its dtype first,
    as NumPy would when it makes the scalar an array of that dtype."""
    import numpy as np
    from .ir import numpy_dtype
    fvals, ivals = [], []
    for n in p.consts:
        k = DTYPES[n.dtype].kind
        if k == "f":
            v = float(n.arg)
            if n.dtype not in ("fp32", "fp64"):
                v = float(np.asarray(v, dtype=np.float64).astype(numpy_dtype(n.dtype)).astype(np.float64))
            elif n.dtype == "fp32":
                v = float(np.float32(v))
            fvals.append(v)
            ivals.append(0)
        else:
            fvals.append(0.0)
            ivals.append(int(n.arg))
    return fvals, ivals
