"""`capture(fn, *args)` -> `Graph`, replayed by calling it; `@trace` caches one graph
per input signature. See `tessera.graph` for the contract and its limits.
"""
from __future__ import annotations

import functools

from .._config import STATE
from ..errors import DeviceError, DTypeError, ShapeError
from ..tensor import Tensor, _new
from .capture import CaptureError, Recorder, warn_escaped
from .replay import compile_step, live_steps


# -- argument / result trees ----------------------------------------------------
def _flatten(obj, path, leaves):
    """Structure of `obj` (tensors replaced by their position in `leaves`)."""
    if type(obj) is Tensor:
        leaves.append((path, obj))
        return ("T",)
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__,) + tuple(_flatten(e, f"{path}[{i}]", leaves)
                                             for i, e in enumerate(obj))
    if isinstance(obj, dict):
        return ("dict",) + tuple((k, _flatten(obj[k], f"{path}[{k!r}]", leaves)) for k in obj)
    try:
        hash(obj)
        return ("S", obj)
    except TypeError:
        return ("S", id(obj))


def flatten_args(args, kwargs):
    leaves = []
    tree = (_flatten(tuple(args), "args", leaves),
            tuple((k, _flatten(v, f"kwargs[{k!r}]", leaves)) for k, v in kwargs.items()))
    return tree, leaves


def _describe(t):
    return f"shape {t.shape} {t.dtype.name} on {t.device}"


class Graph:
    """A captured program: call it to replay on new inputs of the same shapes,
    dtypes and devices. `dump_ir()` prints its Graph/Schedule/Tile IR."""

    def __init__(self, fn, rec, in_tree, in_specs, in_slots, out_tree, bindings, result,
                 capture_inputs=None):
        self.fn = fn
        self.name = getattr(fn, "__name__", "graph")
        self.slots, self.ops, self.all_steps = rec.slots, rec.ops, rec.steps
        self.in_tree, self.in_specs, self.in_slots = in_tree, in_specs, in_slots
        self.out_tree, self.bindings = out_tree, bindings
        self.result = result  # the eager result of the capture run (for `trace`)
        needed = [sid for sid in _out_slots(out_tree)] + [b[2] for b in bindings]
        self.steps = live_steps(rec.steps, needed)
        for st in self.steps:
            if st.kind == "inplace":
                s = self.slots[st.ins[0]]
                st.info["owner"] = s.tensor if s.kind == "external" else None
        self._fns = tuple(compile_step(st) for st in self.steps)
        init = [None] * (len(self.slots) + 1)
        for s in self.slots:
            if s.kind == "external":
                init[s.sid] = s.buf
        self._init = init
        self._has_inplace = any(st.kind == "inplace" for st in self.steps)
        self._simple_args = all(p.startswith("args[") and p.count("[") == 1 for p, *_ in in_specs) \
            and not rec_kwargs(in_tree)
        self._kernels = None
        # what `trace_execution()` with no arguments replays on (@trace drops them:
        # its graphs live as long as the function and must not pin a batch each)
        self._capture_inputs = list(capture_inputs or ())

    # -- replay -------------------------------------------------------------------
    def _check(self, args, kwargs):
        specs = self.in_specs
        if self._simple_args and not kwargs and len(args) == len(specs):
            tensors = args
            for t, (path, shape, dtype, device) in zip(args, specs):
                if type(t) is not Tensor or t.shape != shape or t.dtype is not dtype \
                        or t.device is not device:
                    return self._check_slow(args, kwargs)
            return tensors
        return self._check_slow(args, kwargs)

    def _check_slow(self, args, kwargs):
        tree, leaves = flatten_args(args, kwargs)
        if tree != self.in_tree:
            raise CaptureError(f"[graph] {self.name}: the arguments' structure or non-tensor "
                               f"values differ from the captured call (captured "
                               f"{_fmt_tree(self.in_tree)}, given {_fmt_tree(tree)}); "
                               "capture again for this signature (or use @tessera.graph.trace)")
        for (path, t), (_, shape, dtype, device) in zip(leaves, self.in_specs):
            if t.shape != shape:
                raise ShapeError(f"[graph] {self.name}: argument {path} was captured with shape "
                                 f"{shape} ({dtype.name}), got shape {t.shape} ({t.dtype.name})")
            if t.dtype is not dtype:
                raise DTypeError(f"[graph] {self.name}: argument {path} was captured as "
                                 f"{dtype.name} (shape {shape}), got {t.dtype.name} "
                                 f"(shape {t.shape})")
            if t.device is not device:
                raise DeviceError(f"[graph] {self.name}: argument {path} was captured on "
                                  f"{device}, got a tensor on {t.device}")
        return [t for _, t in leaves]

    def _prepare(self, args, kwargs, tensors=None):
        if STATE.capture is not None:
            raise CaptureError(f"[graph] {self.name}: replaying a graph inside a capture is "
                               "not recorded; call the function itself (a @trace function "
                               "does so automatically)")
        if tensors is None:
            tensors = self._check(args, kwargs)
        if self._has_inplace:
            from ..fusion.lazy import _PENDING, flush_pending
            if _PENDING:
                flush_pending("graph replay")  # pending groups may read what we write
        return tensors

    def _fill(self, tensors):
        v = self._init[:]
        for s, t in zip(self.in_slots, tensors):
            v[s] = t.data
        return v

    def _finish(self, tensors, v):
        for owner, idx, sid, shape, dtype, device in self.bindings:
            t = tensors[idx] if owner is None else owner
            t.grad = _new(v[sid], shape, dtype, device)
        return _build(self.out_tree, v)

    def __call__(self, *args, **kwargs):
        tensors = self._prepare(args, kwargs)
        v = self._fill(tensors)
        for f in self._fns:
            f(v)
        return self._finish(tensors, v)

    def trace_execution(self, *args, device_timing=None, **kwargs):
        """Replay the graph once and return a `tessera.profiler.Timeline` of every
        step (kernel launch, host op, copy), compile and cache hit, with start and
        duration: the seed's `graph.trace_execution()`. With no arguments it
        replays on the tensors it was captured with (kept by the graph); the
        replay has the graph's side effects (an optimizer step updates the
        parameters). `device_timing` forces CUDA-event timing on or off (default:
        on where a GPU is present). The replay's outputs are `timeline.result`.

        >>> import tessera as ts
        >>> g = capture(lambda x: (x * 2).sum(), ts.ones((3,)))
        >>> tl = g.trace_execution()
        >>> [s.name for s in tl.filter(cat="op")]
        ['cpu.multiply', 'host.sum']
        """
        from .replay_trace import trace_replay
        if not args and not kwargs and self.in_specs:
            ins = self._capture_inputs
            if len(ins) != len(self.in_specs):
                raise CaptureError(f"[graph.trace_execution] {self.name}: this graph does "
                                   "not keep the tensors it was captured with (@trace "
                                   "graphs); pass inputs: g.trace_execution(*args)")
            tensors = self._prepare((), {}, ins)
        else:
            tensors = self._prepare(args, kwargs)
        out, tl = trace_replay(self, tensors, device_timing)
        tl.result = out
        return tl

    # -- introspection ----------------------------------------------------------------
    def kernels(self):
        """One dict per replay step: step, kind, kernel name, backend, launch config,
        the graph-op ids it computes."""
        if self._kernels is None:
            from .kernels import describe_host
            ks = []
            for i, st in enumerate(self.steps):
                if st.kind == "fused":
                    d = {k: st.info.get(k) for k in ("kernel_name", "kernel_backend", "source",
                                                     "loop", "launch")}
                else:
                    if st.kind == "op":
                        st.info["op_name"] = self.ops[st.ids[0]].name
                    d = describe_host(st, st.info["device"].backend)
                d.update(step=i, kind=st.kind, ids=list(st.ids))
                ks.append(d)
            self._kernels = ks
        return self._kernels

    def kernel_source(self, name):
        """Source of a kernel named in the Tile IR / `kernels()` (generated C or CUDA,
        or the host function that runs the step)."""
        for k in self.kernels():
            if k["kernel_name"] == name:
                return k["source"] or ""
        raise KeyError(f"[graph] {self.name}: no kernel named {name!r}; known: "
                       f"{sorted({k['kernel_name'] for k in self.kernels()})}")

    def dump_ir(self, level=None, file=None, print_=True):
        """Graph IR, Schedule IR and Tile IR as generic-form MLIR (one level with
        level="graph"|"schedule"|"tile"). Printed and returned."""
        import importlib
        names = ("graph", "schedule", "tile")
        if level is not None and level not in names:
            raise ValueError(f"[graph.dump_ir] level must be one of {names} or None, "
                             f"got {level!r}")

        def make(lv):
            return importlib.import_module(f".ir_{lv}", __package__).dump(self)
        levels = [level] if level else list(names)
        text = "".join(f"// ----- {lv.capitalize()} IR -----\n" + make(lv)
                       if level is None else make(lv) for lv in levels)
        if print_:
            print(text, end="", file=file)
        return text

    def __repr__(self):
        return (f"<tessera.graph.Graph {self.name}: {len(self.ops)} ops, {len(self.steps)} "
                f"steps, {len(self.in_specs)} inputs>")


def rec_kwargs(in_tree):
    return bool(in_tree[1])


def _fmt_tree(t):
    s = repr(t)
    return s if len(s) < 200 else s[:197] + "..."


def _out_slots(tree):
    kind = tree[0]
    if kind == "slot":
        yield tree[1]
    elif kind in ("tuple", "list"):
        for e in tree[1]:
            yield from _out_slots(e)
    elif kind == "dict":
        for _, e in tree[1]:
            yield from _out_slots(e)


def _out_objs(obj):
    if type(obj) is Tensor:
        yield obj
    elif isinstance(obj, (tuple, list)):
        for e in obj:
            yield from _out_objs(e)
    elif isinstance(obj, dict):
        for e in obj.values():
            yield from _out_objs(e)


def _build(tree, v):
    kind = tree[0]
    if kind == "slot":
        _, sid, shape, dtype, device = tree
        buf = v[sid]
        return _new(buf, tuple(buf.shape), dtype, device)
    if kind == "same":
        return tree[1]
    if kind == "tuple":
        return tuple(_build(e, v) for e in tree[1])
    if kind == "list":
        return [_build(e, v) for e in tree[1]]
    if kind == "dict":
        return {k: _build(e, v) for k, e in tree[1]}
    return tree[1]  # ("static", value)


def _out_tree(obj, rec):
    if type(obj) is Tensor:
        obj.data  # realize while the recorder listens
        sid = rec.slot_of(obj)
        if rec.slots[sid].kind == "external":
            return ("same", obj)  # a parameter returned as is
        return ("slot", sid, obj.shape, obj.dtype, obj.device)
    if isinstance(obj, tuple) and type(obj) is tuple:
        return ("tuple", tuple(_out_tree(e, rec) for e in obj))
    if isinstance(obj, list):
        return ("list", tuple(_out_tree(e, rec) for e in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((k, _out_tree(e, rec)) for k, e in obj.items()))
    return ("static", obj)


def capture(fn, *args, **kwargs):
    """Run `fn(*args, **kwargs)` once, recording its ops, fused groups, kernels and
    in-place writes, and return a replayable `Graph`.

    >>> import tessera as ts
    >>> g = capture(lambda x: (x * 2).sum(), ts.ones((3,)))
    >>> float(g(ts.asarray([1.0, 2.0, 3.0])))
    12.0
    """
    from ..fusion.lazy import flush_pending
    from ..profiler import events
    if STATE.capture is not None:
        raise CaptureError("[graph.capture] already capturing: captures do not nest")
    in_tree, leaves = flatten_args(args, kwargs)
    flush_pending("graph capture")  # values computed before the capture are externals
    args, kwargs, leaves = _distinct_inputs(args, kwargs, leaves)
    rec = Recorder()
    in_slots, in_specs = [], []
    for path, t in leaves:
        in_slots.append(rec.add_input(t, path))
        in_specs.append((path, t.shape, t.dtype, t.device))
    sub = events.subscribe(rec)
    STATE.capture = rec
    try:
        result = fn(*args, **kwargs)
        out_tree = _out_tree(result, rec)
        bindings = []
        owners = [(None, i, t) for i, (_, t) in enumerate(leaves)] + \
                 [(t, None, t) for t in list(rec.ext_tensors.values())]
        for owner, idx, t in owners:
            g = t.grad
            if type(g) is Tensor:
                g.data
                sid = rec.slot_of(g)
                if rec.slots[sid].kind == "intermediate":
                    bindings.append((owner, idx, sid, g.shape, g.dtype, g.device))
        kept = set(_out_slots(out_tree)) | {b[2] for b in bindings}
        warn_escaped(rec, kept, {id(o) for o in _out_objs(result)})
    finally:
        sub.remove()
        STATE.capture = None
    if rec.groups:
        raise CaptureError("[graph.capture] a fused group started but never finished")
    return Graph(fn, rec, in_tree, in_specs, in_slots, out_tree, bindings, result,
                 [t for _, t in leaves])


def _distinct_inputs(args, kwargs, leaves):
    """Buffers identify values, so an input passed twice (f(x, x)) is given to `fn`
    as a second tensor object over the same memory, making the two arguments two
    slots that replay can fill with different tensors."""
    seen, changed = set(), False
    for i, (path, t) in enumerate(leaves):
        buf = t.data
        if id(buf) in seen:
            if t.requires_grad:
                raise CaptureError(f"[graph.capture] argument {path} is the same tensor as an "
                                   "earlier argument and requires grad; pass distinct tensors")
            leaves[i] = (path, _new(buf.view(), t.shape, t.dtype, t.device))
            changed = True
        seen.add(id(leaves[i][1].data))
    if not changed:
        return args, kwargs, leaves
    it = iter([t for _, t in leaves])

    def rep(o):  # the same traversal order as _flatten
        if type(o) is Tensor:
            return next(it)
        if isinstance(o, (tuple, list)):
            return type(o)([rep(e) for e in o])
        if isinstance(o, dict):
            return {k: rep(e) for k, e in o.items()}
        return o
    return rep(tuple(args)), {k: rep(v) for k, v in kwargs.items()}, leaves


def _signature(args, kwargs):
    tree, leaves = flatten_args(args, kwargs)
    return tree, tuple((t.shape, t.dtype, t.device) for _, t in leaves)


def trace(fn=None, *, max_graphs=16):
    """Decorator: capture on the first call with each input signature (structure,
    non-tensor values, tensor shapes/dtypes/devices), replay on later calls.
    `wrapper.graphs` holds the captured graphs by signature."""
    if fn is None:
        return functools.partial(trace, max_graphs=max_graphs)
    graphs = {}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if STATE.capture is not None:  # inside another capture: be recorded inline
            return fn(*args, **kwargs)
        key = _signature(args, kwargs)
        g = graphs.get(key)
        if g is None:
            if len(graphs) >= max_graphs:
                raise CaptureError(f"[graph.trace] {getattr(fn, '__name__', fn)}: more than "
                                   f"{max_graphs} input signatures captured; shapes or "
                                   "non-tensor arguments change on every call")
            g = graphs[key] = capture(fn, *args, **kwargs)
            res, g.result, g._capture_inputs = g.result, None, []
            return res
        return g(*args, **kwargs)
    wrapper.graphs = graphs
    return wrapper
