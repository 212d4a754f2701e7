"""`Graph.trace_execution()`: replay a captured graph once, timing every step.

Each replay step becomes one span named as `Graph.kernels()` names it (the
generated C/CUDA kernel of a fused group, `host.<op>` for an op's `fwd`, the
backend ufunc of an eager elementwise op, `host.to_device` for a copy), with the
bytes its buffers read and write (so `Timeline.summary()` reports bandwidth).
Compiles and kernel-cache hits that happen during the replay come from the
compile listeners (`tessera.profiler.events`), one "replay" span encloses the
whole run (its self time is the replay loop's own overhead).

Clocks: on the CPU every step runs to completion before it returns, so the host
clock (`perf_counter_ns`) times it. On a GPU the host span only times the launch;
a CUDA event is recorded on the stream before and after every step that runs on a
GPU -- no host synchronization per launch -- and all events are resolved with one
synchronization at the end (`tessera.profiler.profile`'s `Recorder` does the
bookkeeping), giving a second, device lane.

    >>> import tessera as ts
    >>> from tessera.graph import capture
    >>> g = capture(lambda x: ts.exp(x) @ x, ts.ones((4, 4)))
    >>> tl = g.trace_execution()
    >>> [s.name for s in tl.filter(cat="op")] == [k["kernel_name"] for k in g.kernels()]
    True
"""
from __future__ import annotations

import time

_now = time.perf_counter_ns
_CATS = {"fused": "fused", "op": "op", "ew": "op", "inplace": "inplace", "copy": "copy"}


def _nbytes(v, slots):
    n = 0
    for i in slots:
        b = v[i]
        nb = getattr(b, "nbytes", None)
        if nb is not None:
            n += int(nb)
    return n


def trace_replay(g, tensors, device_timing=None):
    """Replay `g` on `tensors` (already checked) and return (outputs, Timeline)."""
    from ..profiler.profile import Recorder
    kernels = g.kernels()
    rec = Recorder(device_timing=device_timing, record_shapes=False)
    # only compile / cache-hit events reach it: replay itself emits no op events
    rec.start()
    clock = rec._clock
    raw = rec.raw
    try:
        v = g._fill(tensors)
        t_start = _now()
        e_start = clock.mark() if clock is not None else None
        for f, st, k in zip(g._fns, g.steps, kernels):
            gpu = clock is not None and st.info["device"].type != "cpu"
            e0 = clock.mark() if gpu else None
            t0 = _now()
            f(v)
            t1 = _now()
            evs = (e0, clock.mark()) if gpu else None
            args = {"step": k["step"], "kind": st.kind, "ids": k["ids"],
                    "backend": k.get("kernel_backend")}
            raw.append((k["kernel_name"] or f"step{k['step']}", _CATS[st.kind], t0, t1,
                        _nbytes(v, st.ins + st.outs), args, evs))
        t_end = _now()
        evs = (e_start, clock.mark()) if clock is not None else None
        raw.append((f"replay {g.name}", "replay", t_start, t_end, None,
                    {"steps": len(g.steps)}, evs))
        out = g._finish(tensors, v)
    finally:
        tl = rec.stop()
    tl.meta.update(graph=g.name, steps=len(g.steps), ops=len(g.ops))
    return out, tl
