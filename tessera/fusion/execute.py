"""Turn a pending group of `LazyOp`s into the fusion IR and run it.

`build_ir` maps the group onto the hash-consed `ir.Node` DAG (inputs become
numbered slots, Python scalars become consts, the casts implied by promotion
become explicit `cast` nodes) so that structurally equal groups share one
compiled kernel. `run_group` hands it to the backend's generated-kernel runner;
without one (no C compiler) it evaluates op by op with the backend's array
module, the semantics every generated kernel is tested against.
"""
from __future__ import annotations

import warnings

from ..tensor import Tensor

_REDUCE_NAMES = {"reduce_sum": "sum", "reduce_prod": "prod", "reduce_max": "max",
                 "reduce_min": "min"}


def _leaf_value(src):
    """(buffer, dtype, shape) of a realized source."""
    from .lazy import LazyOp
    if type(src) is LazyOp:
        return src.buf, src.dtype, src.shape
    return src.data, src.dtype, src.shape


def build_ir(outputs, order, shape, structure=None):
    """IR roots, input buffers (broadcast to `shape`) and their dtypes.  With a dict as
    `structure`, no buffer is touched (pending leaves allowed) and the dict receives
    id(LazyOp) -> IR node (epilogue matching)."""
    from . import ir
    from .lazy import LazyOp
    memo, slots, inputs = {}, {}, []
    backend = outputs[0].device.backend
    xp = backend.xp

    def leaf(src):
        if structure is not None:
            node = slots.get(id(src))
            if node is None:
                node = slots[id(src)] = ir.Node("input", src.dtype.name, (), len(slots))
            return node
        buf, dt, sshape = _leaf_value(src)
        key = id(buf)
        node = slots.get(key)
        if node is None:
            node = ir.Node("input", dt.name, (), len(inputs))
            slots[key] = node
            if sshape != shape:
                pad = (1,) * (len(shape) - len(sshape)) + tuple(sshape)
                buf = xp.broadcast_to(buf.reshape(pad), shape)
            inputs.append(buf)
        return node

    def operand(s, want):
        if type(s) is LazyOp and s.buf is None and (structure is None or id(s) in memo):
            n = memo[id(s)]
        elif type(s) is LazyOp or type(s) is Tensor:
            n = leaf(s)
        else:
            return ir.Node("const", want.name, (), s)
        if n.dtype != want.name:
            n = ir.Node("cast", want.name, (n,), None)
        return n

    for lop in order:
        if lop.axes is not None:  # a row program's reduction (fusion mode "aggressive")
            memo[id(lop)] = ir.Node(lop.op, lop.dtype.name, (operand(lop.srcs[0], lop.dtype),),
                                    lop.axes)
            continue
        if lop.op == "cast":
            srcs = (operand(lop.srcs[0], lop.in_dtype),)
        elif lop.op == "where":
            from .. import dtypes as _dt
            srcs = (operand(lop.srcs[0], _dt.bool_),) + tuple(operand(s, lop.in_dtype) for s in lop.srcs[1:])
        else:
            srcs = tuple(operand(s, lop.in_dtype) for s in lop.srcs)
        memo[id(lop)] = ir.Node(lop.op, lop.dtype.name, srcs, lop.arg)
    roots = []
    for o in outputs:
        if o.axes is not None and id(o) in memo:
            roots.append(memo[id(o)])
        elif o.axes is not None:
            src = operand(o.srcs[0], o.dtype)
            roots.append(ir.Node(o.op, o.dtype.name, (src,), o.axes))
        else:
            roots.append(memo[id(o)])
    if structure is not None:
        structure.update(memo)
    return roots, inputs


def evaluate(backend, outputs, order, shape):
    """Op-by-op evaluation with the backend's array module (the reference path)."""
    from .lazy import LazyOp
    vals = {}

    def value(s, want):
        if type(s) is LazyOp and s.buf is None:
            v, dt = vals[id(s)], s.dtype
        elif type(s) is LazyOp or type(s) is Tensor:
            buf, dt, _ = _leaf_value(s)
            v = backend.compute(buf, dt)
        else:
            return s
        if dt is not want:
            v = backend.compute(backend.cast(backend.store(v, dt), dt, want), want)
        return v

    from .. import dtypes as _dt
    for lop in order:
        if lop.axes is not None:  # row program reduction: keepdims, broadcast by its users
            v = value(lop.srcs[0], lop.dtype)
            vals[id(lop)] = backend.compute(backend.reduce(
                _REDUCE_NAMES[lop.op], backend.store(v, lop.dtype), lop.dtype, lop.axes, True,
                lop.dtype), lop.dtype)
            continue
        if lop.op == "cast":
            v = value(lop.srcs[0], lop.in_dtype)
            out = backend.cast(backend.store(v, lop.in_dtype), lop.in_dtype, lop.dtype)
        else:
            args = [value(s, _dt.bool_ if (lop.op == "where" and i == 0) else lop.in_dtype)
                    for i, s in enumerate(lop.srcs)]
            out = backend.elementwise(lop.op, args, lop.dtype)
        vals[id(lop)] = backend.compute(out, lop.dtype)
    res = []
    for o in outputs:
        if o.axes is not None and id(o) in vals:
            res.append(backend.store(vals[id(o)], o.dtype))
        elif o.axes is not None:
            src = o.srcs[0]
            v = value(src, o.dtype)
            r = backend.reduce(_REDUCE_NAMES[o.op], backend.store(v, o.dtype), o.dtype,
                               o.axes, True, o.dtype)
            res.append(r)
        else:
            res.append(backend.store(vals[id(o)], o.dtype))
    return res


_warned = set()


def run_group(backend, outputs, order, shape, runner_name):
    """Run a group through the backend's generated-kernel runner, else op by op."""
    try:
        from . import runtime
        runner = getattr(runtime, runner_name)
    except (ImportError, AttributeError) as e:
        if runner_name not in _warned:
            _warned.add(runner_name)
            warnings.warn(f"tessera.fusion: generated kernels unavailable ({e}); "
                          "running fused groups op by op", RuntimeWarning, stacklevel=4)
        return evaluate(backend, outputs, order, shape), {"kernel": "op-by-op"}
    roots, inputs = build_ir(outputs, order, shape)
    info = {}
    bufs = runner(roots, inputs, shape)
    kinfo = getattr(runtime, "last_kernel_info", None)
    if kinfo is not None:
        info = kinfo() or {}
    return bufs, info
