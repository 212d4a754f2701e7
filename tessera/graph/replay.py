"""Replaying a captured graph: a flat list of step closures over a list of buffers.

Each step is compiled at capture into a closure `step(v)` that reads its input
slots from `v` and writes its outputs: an `apply_op` step calls the op's
`fwd(*buffers)`, an eager elementwise step the backend ufunc (with the same casts
the eager path makes), a fused step the generated kernel runner
(`fusion.runtime.run_cpu`/`run_cuda`) on its remapped, broadcast input buffers, an
in-place step the write function its event carried. No Tensor objects, dtype
rules, tape or events are involved, which is where the speed comes from. Steps
whose results nothing reads are dropped (dead code); in-place writes are kept.
"""
from __future__ import annotations

from ..backend.common import ArrayBackend
from .capture import CaptureError

_BASE_EW = ArrayBackend.elementwise
_BASE_COMPUTE = ArrayBackend.compute


def live_steps(steps, needed):
    """Steps that contribute to `needed` slots (outputs, bound grads) or write in place."""
    need = set(needed)
    keep = []
    for st in reversed(steps):
        if st.kind == "inplace" or any(o in need for o in st.outs):
            keep.append(st)
            need.update(st.ins)
    keep.reverse()
    return keep


def compile_step(st):
    """The replay closure of one step."""
    return _COMPILERS[st.kind](st)


def _op(st):
    fwd = st.info["fwd"]
    o = st.outs[0]
    ins = st.ins
    if len(ins) == 1:
        a = ins[0]

        def step(v):
            v[o] = fwd(v[a])
    elif len(ins) == 2:
        a, b = ins

        def step(v):
            v[o] = fwd(v[a], v[b])
    else:
        def step(v):
            v[o] = fwd(*[v[i] for i in ins])
    return step


def _ew(st):
    info = st.info
    backend = info["device"].backend
    name, in_dt, out_dt = info["name"], info["in_dt"], info["out_dt"]
    o = st.outs[0]
    plain = type(backend).compute is _BASE_COMPUTE
    convs, simple = [], True
    for src, dt in info["args"]:
        if src == "scalar":
            convs.append((None, dt, None))
            continue
        cast = None if (dt is in_dt or in_dt is None) else backend.compute_dtype(in_dt)
        simple = simple and cast is None
        convs.append((src, dt, cast))
    if plain and simple and type(backend).elementwise is _BASE_EW:
        f = backend.ew_fns[name]
        sd = backend.storage_dtype(out_dt)
        kinds = tuple(c[0] is None for c in convs)
        if kinds == (False,):
            a = convs[0][0]

            def step(v):
                r = f(v[a])
                v[o] = r if r.dtype == sd else r.astype(sd)
            return step
        if kinds == (False, False):
            a, b = convs[0][0], convs[1][0]

            def step(v):
                r = f(v[a], v[b])
                v[o] = r if r.dtype == sd else r.astype(sd)
            return step
        if kinds == (False, True):
            a, c = convs[0][0], convs[1][1]

            def step(v):
                r = f(v[a], c)
                v[o] = r if r.dtype == sd else r.astype(sd)
            return step
        if kinds == (True, False):
            c, b = convs[0][1], convs[1][0]

            def step(v):
                r = f(c, v[b])
                v[o] = r if r.dtype == sd else r.astype(sd)
            return step
    compute, elementwise = backend.compute, backend.elementwise

    def step(v):
        args = []
        for src, dt, cast in convs:
            if src is None:
                args.append(dt)  # the scalar itself
                continue
            x = compute(v[src], dt)
            if cast is not None:
                x = x.astype(cast)
            args.append(x)
        v[o] = elementwise(name, args, out_dt)
    return step


def _fused(st):
    info = st.info
    backend = info["device"].backend
    try:
        from ..fusion import runtime
        runner = getattr(runtime, backend.FUSED_RUNNER)
    except (ImportError, AttributeError) as e:
        raise CaptureError(f"[graph.replay] fused groups need tessera.fusion.runtime."
                           f"{backend.FUSED_RUNNER}: {e}") from None
    roots, shape, pads = info["roots"], info["shape"], info["pads"]
    xp = backend.xp
    ins = tuple(zip(st.ins, pads))
    outs = tuple(zip(st.outs, info["out_shapes"]))

    def step(v):
        arrays = [v[i] if pad is None else xp.broadcast_to(v[i].reshape(pad), shape)
                  for i, pad in ins]
        bufs = runner(roots, arrays, shape)
        for (o, osh), b in zip(outs, bufs):
            v[o] = b if tuple(b.shape) == osh else b.reshape(osh)
    return step


def _inplace(st):
    write = st.info["write"]
    t, srcs = st.ins[0], st.ins[1:]
    owner = st.info.get("owner")  # an external tensor: bump its version as eager does

    def step(v):
        write(v[t], *[v[i] for i in srcs])
        if owner is not None:
            owner._version.v += 1
    return step


def _copy(st):
    import numpy as np
    info = st.info
    sb, db, dt = info["src_device"].backend, info["device"].backend, info["dtype"]
    a, o = st.ins[0], st.outs[0]

    def step(v):
        v[o] = db.from_numpy(np.ascontiguousarray(sb.to_numpy(v[a], dt)), dt)
    return step


_COMPILERS = {"op": _op, "ew": _ew, "fused": _fused, "inplace": _inplace, "copy": _copy}
