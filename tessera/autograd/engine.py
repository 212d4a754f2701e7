"""The tape: nodes recorded by differentiable ops, and the reverse sweep.

Every differentiable op calls `record(...)` with its inputs, outputs and a VJP
closure written in tessera ops (so backward passes fuse and can themselves be
differentiated). A `Node` keeps only what backward needs: edges to its inputs'
nodes, the inputs' shapes/dtypes (to undo broadcasting and to cast the gradient
back to the input's dtype), and the saved tensors with the version they had, so
that an in-place write into a saved tensor is caught instead of giving a wrong
gradient. `backward` frees the saved tensors unless `retain_graph` is set.
"""
from __future__ import annotations

import itertools

from .._config import STATE
from .._graphwalk import postorder
from ..errors import GradError
from ..tensor import Tensor

_seq = itertools.count()


class AccumulateGrad:
    """The sink at a leaf tensor: adds incoming gradients into `leaf.grad`."""
    __slots__ = ("leaf", "hooks", "seq", "name", "edge")

    def __init__(self, leaf):
        self.leaf = leaf
        self.hooks = None
        self.seq = -1
        self.name = "AccumulateGrad"
        self.edge = (self, 0)  # the tape edge into this sink, made once per leaf

    def add_hook(self, idx, fn):
        if self.hooks is None:
            self.hooks = []
        self.hooks.append(fn)
        return _HookHandle(self.hooks, fn)

    def __repr__(self):
        return "<AccumulateGrad>"


class Node:
    """One recorded op. `vjp(*out_grads) -> tuple of input grads (or None)`."""
    __slots__ = ("name", "vjp", "next", "metas", "saved", "versions", "hooks", "retain",
                 "seq", "n_out", "out_metas", "released", "info", "origins", "__weakref__")

    def __init__(self, name, vjp, next_, metas, saved, n_out, out_metas, info=None):
        self.name = name
        self.vjp = vjp
        self.next = next_
        self.metas = metas
        self.saved = saved
        self.versions = tuple(t._version.v for t in saved) if saved else ()
        self.hooks = None
        self.retain = None
        self.seq = next(_seq)
        self.n_out = n_out
        self.out_metas = out_metas
        self.released = False
        self.info = info
        self.origins = ()

    def add_hook(self, idx, fn):
        if self.hooks is None:
            self.hooks = {}
        lst = self.hooks.setdefault(idx, [])
        lst.append(fn)
        return _HookHandle(lst, fn)

    def add_retain(self, tensor):
        import weakref
        if self.retain is None:
            self.retain = []
        self.retain.append((tensor._out_idx, weakref.ref(tensor)))

    @property
    def next_functions(self):
        return tuple((n, 0) for n in self.next)

    def __repr__(self):
        return f"<{self.name}Backward>"


class _HookHandle:
    __slots__ = ("lst", "fn")

    def __init__(self, lst, fn):
        self.lst, self.fn = lst, fn

    def remove(self):
        if self.fn in self.lst:
            self.lst.remove(self.fn)


def _edge(t):
    if t.grad_fn is not None:
        return (t.grad_fn, t._out_idx)
    acc = t._accum
    if acc is None:
        acc = t._accum = AccumulateGrad(t)
    return acc.edge


def hook_target(t):
    return t.grad_fn if t.grad_fn is not None else _edge(t)[0]


def needs_grad(*tensors):
    """True when recording is on and any argument is a tensor that requires grad."""
    if not STATE.grad_enabled:
        return False
    for t in tensors:
        if getattr(t, "requires_grad", False):
            return True
    return False


def record(name, inputs, outputs, vjp, saved=(), info=None, *, origins=None):
    """Put one op on the tape. `inputs`: the op's tensor inputs (those that do not
    require grad get no edge); `outputs`: tensor or tuple of tensors made by the op;
    `vjp(g)` (or `vjp(g0, g1, ...)` for several outputs) returns one gradient per
    input; `saved`: tensors the vjp closes over, checked for in-place writes.
    `origins` (optional): for each saved tensor, what `_origin` would find, when
    the caller knows it (elementwise ops do), to skip the search."""
    # Explicit code for one and two inputs, no generators, lists or _edge call for
    # non-leaves: this runs once per recorded op (the eager hot path).
    n_in = len(inputs)
    if n_in == 2:
        a, b = inputs
        if a is None:
            ea = ma = None
        else:
            ma = (a.shape, a.dtype)
            if a.requires_grad:
                fn = a.grad_fn
                if fn is not None:
                    ea = (fn, a._out_idx)
                else:
                    ea = a._accum
                    ea = ea.edge if ea is not None else _edge(a)
            else:
                ea = None
        if b is None:
            eb = mb = None
        else:
            mb = (b.shape, b.dtype)
            if b.requires_grad:
                fn = b.grad_fn
                if fn is not None:
                    eb = (fn, b._out_idx)
                else:
                    eb = b._accum
                    eb = eb.edge if eb is not None else _edge(b)
            else:
                eb = None
        next_, metas = (ea, eb), (ma, mb)
    elif n_in == 1:
        a = inputs[0]
        if a is None:
            next_ = metas = (None,)
        else:
            metas = ((a.shape, a.dtype),)
            if a.requires_grad:
                fn = a.grad_fn
                next_ = ((fn, a._out_idx) if fn is not None else _edge(a),)
            else:
                next_ = (None,)
    else:
        next_, metas = [], []
        for t in inputs:
            if t is None:
                next_.append(None)
                metas.append(None)
                continue
            if t.requires_grad:
                fn = t.grad_fn
                next_.append((fn, t._out_idx) if fn is not None else _edge(t))
            else:
                next_.append(None)
            metas.append((t.shape, t.dtype))
        next_, metas = tuple(next_), tuple(metas)
    single = type(outputs) is Tensor
    if single:
        outs = None  # (outputs,), built only when searching origins below
        out_metas = ((outputs.shape, outputs.dtype),)
    else:
        outs = tuple(outputs)
        out_metas = tuple([(o.shape, o.dtype) for o in outs])
    if type(saved) is not tuple:
        saved = tuple(saved)
    # The Node's fields are set here rather than through Node.__init__ (one Python
    # call less per recorded op); Node.__init__ sets the same fields.
    node = _object_new(Node)
    node.name = name
    node.vjp = vjp
    node.next = next_
    node.metas = metas
    node.saved = saved
    node.hooks = None
    node.retain = None
    node.seq = next(_seq)
    node.n_out = 1 if single else len(outs)
    node.out_metas = out_metas
    node.released = False
    node.info = info
    if saved:
        n_saved = len(saved)  # one or two saved tensors: no list comprehension call
        if n_saved == 1:
            node.versions = (saved[0]._version.v,)
        elif n_saved == 2:
            node.versions = (saved[0]._version.v, saved[1]._version.v)
        else:
            node.versions = tuple([t._version.v for t in saved])
        if origins is None:
            o_ = (outputs,) if single else outs
            origins = tuple([_origin(s, inputs, o_) for s in saved])
        node.origins = origins
    else:
        node.versions = node.origins = ()
    if single:
        if outputs.dtype.is_differentiable:
            outputs.requires_grad = True
            outputs.grad_fn = node
            outputs._out_idx = 0
    else:
        for i, o in enumerate(outs):
            if o.dtype.is_differentiable:
                o.requires_grad = True
                o.grad_fn = node
                o._out_idx = i
    sinks = STATE.event_sinks
    if sinks:
        for s in sinks:
            s("tape", node)
    return node


_object_new = object.__new__


def _storage(t):
    """The array behind `t`, or its pending LazyOp; the same for a tensor and a
    detached copy even when only one of them has been realized since."""
    if t._buf is not None:
        return t._buf
    lop = t._lazy
    return lop.buf if lop.buf is not None else lop


def _origin(s, inputs, outs):
    """Which input ("in", i) or output ("out", k) the saved tensor `s` is a detached
    copy of (same storage and version counter), or None."""
    v, buf = s._version, s._buf
    for kind, ts in (("in", inputs), ("out", outs)):
        for i, t in enumerate(ts):
            if t is not None and t._version is v and t.shape == s.shape:
                tb = t._buf
                if (tb is buf and tb is not None) or _storage(t) is _storage(s):
                    return kind, i
    return None


def _reattach(node):
    """For create_graph: put the node's saved (detached) tensors back on the tape
    for the duration of its vjp, so that the gradient it builds depends on them
    (the second derivative of exp needs `g * out` to see `out` as a function of x).
    The edges are taken by `record` while the vjp runs; `_detach_saved` then
    takes the saved tensors off the tape again, so no reference cycle remains."""
    for s, org in zip(node.saved, node.origins):
        if org is None or s.requires_grad:
            continue
        kind, i = org
        if kind == "in":
            e = node.next[i]
            if e is None:
                continue
            if type(e[0]) is Node:
                s.grad_fn, s._out_idx = e
            else:
                s._accum = e[0]
        else:
            s.grad_fn, s._out_idx = node, i
        s.requires_grad = True


def _detach_saved(node):
    for s, org in zip(node.saved, node.origins):
        if org is not None:
            s.requires_grad = False
            s.grad_fn = None
            s._accum = None


# ---------------------------------------------------------------------------
def _topo(roots):
    """Nodes reachable from `roots`, in an order where each node comes before
    every node it sends gradients to."""
    # (roots and edges given reversed: postorder pushes them reversed again, which
    # keeps the walk, and so the order gradients are summed in, as it always was)
    order = postorder(roots[::-1], _next_nodes_reversed)
    order.reverse()
    return order


def _next_nodes_reversed(node):
    if type(node) is not Node:
        return ()
    return [e[0] for e in reversed(node.next) if e is not None]


def _sum_to_shape(g, shape):
    """Undo broadcasting: sum `g` down to `shape`."""
    if g.shape == shape:
        return g
    from ..ops.reduce import sum as _sum
    from ..ops.movement import reshape
    nd = g.ndim - len(shape)
    axes = tuple(range(nd)) + tuple(i + nd for i, d in enumerate(shape)
                                    if d == 1 and g.shape[i + nd] != 1)
    if axes:
        g = _sum(g, axis=axes, keepdims=True)
    if nd:
        g = reshape(g, shape)
    elif g.shape != shape:
        g = reshape(g, shape)
    return g


def _fit(g, meta):
    """Bring an input's gradient to the input's shape and dtype."""
    shape, dtype = meta
    if g.shape != shape:
        g = _sum_to_shape(g, shape)
    if g.dtype is not dtype and dtype.is_differentiable:
        from ..ops.elementwise import astype
        g = astype(g, dtype)
    return g


def _zeros_like_meta(meta, device):
    from ..ops.creation import zeros
    return zeros(meta[0], dtype=meta[1], device=device)


def run_backward(roots, grads, retain_graph=False, create_graph=False, inputs=None,
                 accumulate=True):
    """The reverse sweep. Returns the gradients of `inputs` when given (as
    `tessera.autograd.grad` does), else accumulates into the leaves' `.grad`."""
    from .grad_mode import _GradMode
    root_edges = []
    for t, g in zip(roots, grads):
        if not t.requires_grad:
            raise GradError("[backward] tensor does not require grad and has no grad_fn; "
                            "create it with requires_grad=True or compute it from such a tensor")
        root_edges.append((_edge(t), g, t.device))
    nodes = _topo([e[0] for e, _, _ in root_edges])
    pending = {}  # id(node) -> list of grads per output
    for (node, idx), g, _ in root_edges:
        slot = pending.setdefault(id(node), [None] * (node.n_out if type(node) is Node else 1))
        slot[idx] = g if slot[idx] is None else slot[idx] + g
    wanted = None
    results = {}
    if inputs is not None:
        wanted = {}
        for i, t in enumerate(inputs):
            e = _edge(t)
            wanted.setdefault((id(e[0]), e[1]), []).append(i)
    device = roots[0].device
    with _GradMode(bool(create_graph)):
        for node in nodes:
            gs = pending.pop(id(node), None)
            if gs is None:
                continue
            if type(node) is AccumulateGrad:
                g = gs[0]
                if node.hooks:
                    for h in node.hooks:
                        r = h(g)
                        if r is not None:
                            g = r
                if wanted is not None:
                    for i in wanted.get((id(node), 0), ()):
                        results[i] = g
                    continue
                leaf = node.leaf
                g = _fit(g, (leaf.shape, leaf.dtype))
                if not create_graph:
                    g = g.detach()
                leaf.grad = g if leaf.grad is None else leaf.grad + g
                continue
            if node.hooks:
                for idx, hooks in node.hooks.items():
                    if gs[idx] is not None:
                        for h in hooks:
                            r = h(gs[idx])
                            if r is not None:
                                gs[idx] = r
            if node.retain:
                for idx, ref in node.retain:
                    t = ref()
                    if t is not None and gs[idx] is not None:
                        g = gs[idx] if create_graph else gs[idx].detach()
                        t.grad = g if t.grad is None else t.grad + g
            if wanted is not None:
                for idx in range(node.n_out):
                    for i in wanted.get((id(node), idx), ()):
                        results[i] = gs[idx]
            if node.released:
                raise GradError(f"[backward] trying to backward through {node.name} a second "
                                "time: its saved tensors were freed after the first backward. "
                                "Pass retain_graph=True to the first backward.")
            for t, v in zip(node.saved, node.versions):
                if t._version.v != v:
                    raise GradError(
                        f"[backward] a tensor saved by '{node.name}' (shape {t.shape}, "
                        f"{t.dtype.name}) was modified in place after it was saved (version "
                        f"{t._version.v}, expected {v}); its gradient would be wrong. Clone "
                        "the tensor before modifying it, or modify it out of place.")
            for i in range(node.n_out):
                if gs[i] is None:
                    gs[i] = _zeros_like_meta(node.out_metas[i], device)
            sinks = STATE.event_sinks
            if sinks:  # begin mark: the profiler and check_numerics see the adjoint's ops
                for s in sinks:
                    s("backward_start", node)
            if create_graph and node.origins:
                _reattach(node)
                try:
                    in_grads = node.vjp(*gs)
                finally:
                    _detach_saved(node)
            else:
                in_grads = node.vjp(*gs)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            sinks = STATE.event_sinks
            if sinks:
                for s in sinks:
                    s("backward", (node, in_grads))
            for e, g, meta in zip(node.next, in_grads, node.metas):
                if e is None or g is None:
                    continue
                g = _fit(g, meta)
                nxt, idx = e
                slot = pending.get(id(nxt))
                if slot is None:
                    slot = pending[id(nxt)] = [None] * (nxt.n_out if type(nxt) is Node else 1)
                slot[idx] = g if slot[idx] is None else slot[idx] + g
            if not retain_graph:
                node.saved = ()
                node.vjp = None
                node.released = True
    if wanted is not None:
        return [results.get(i) for i in range(len(inputs))]
    return None


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaves) into the leaves' `.grad`, as
    `torch.autograd.backward`."""
    from ..ops.creation import ones_like, asarray
    tensors = tuple(tensors)
    if grad_tensors is None:
        grad_tensors = (None,) * len(tensors)
    gs = []
    for t, g in zip(tensors, grad_tensors):
        if g is None:
            if t.size != 1:
                raise GradError(f"[backward] gradient can be implicitly created only for "
                                f"scalar outputs; this tensor has shape {t.shape}. Pass a "
                                f"gradient of that shape: t.backward(grad)")
            g = ones_like(t)
        elif type(g) is not type(t):
            g = asarray(g, dtype=t.dtype, device=t.device)
        if g.shape != t.shape:
            from ..errors import ShapeError
            raise ShapeError(f"[backward] gradient shape {g.shape} does not match the "
                             f"tensor's shape {t.shape}")
        gs.append(g)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        res = run_backward(tensors, gs, retain_graph, create_graph, inputs=inputs)
        for t, g in zip(inputs, res):
            if g is not None:
                g = _fit(g, (t.shape, t.dtype))
                if not create_graph:
                    g = g.detach()
                t.grad = g if t.grad is None else t.grad + g
        return
    run_backward(tensors, gs, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned rather than
    accumulated (as `torch.autograd.grad`)."""
    from ..ops.creation import ones_like
    single_out = not isinstance(outputs, (list, tuple))
    outputs = [outputs] if single_out else list(outputs)
    single_in = not isinstance(inputs, (list, tuple))
    inputs = [inputs] if single_in else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    gs = []
    for o, g in zip(outputs, grad_outputs):
        if g is None:
            if o.size != 1:
                raise GradError(f"[grad] output of shape {o.shape} is not a scalar: pass grad_outputs")
            g = ones_like(o)
        gs.append(g)
    for t in inputs:
        if not t.requires_grad:
            raise GradError(f"[grad] an input (shape {t.shape}) does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    res = run_backward(outputs, gs, retain_graph, create_graph, inputs=inputs)
    out = []
    for t, g in zip(inputs, res):
        if g is None:
            if not allow_unused:
                raise GradError(f"[grad] an input (shape {t.shape}) was not used to compute "
                                "the outputs; pass allow_unused=True to get None for it")
        else:
            g = _fit(g, (t.shape, t.dtype))
        out.append(g)
    return out[0] if single_in else tuple(out)
