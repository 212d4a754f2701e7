"""`tessera.precision.report(fn, *args, dtypes=...)`: where a model loses precision.

Runs `fn` once in float64 (the reference) and once per candidate precision, with
fusion off so that every op is observed (through the profiler's event stream),
and compares the ops one by one (the i-th op of a run with the i-th op of the
reference; `fn` must run the same ops for every dtype). A candidate is a float
dtype ("bf16", "fp16", "fp8_e4m3", "fp32": float inputs are cast to it) or a
quantization scheme ("int8_per_channel", ...: float inputs of 2+ dimensions, the
weights, go through quantize/dequantize, and the run is fp32).

Per op: `rel_error` = ||out - ref|| / ||ref||, `added_error` = rel_error minus the
largest rel_error of its inputs (what this op adds), `overflow` = values finite in
the reference but beyond the candidate's range (or non-finite in the candidate),
`underflow` = values non-zero in the reference that flushed to zero. Ops adding
more than `threshold` or overflowing/underflowing are suggested for fp32.

    >>> import tessera as ts
    >>> r = report(lambda x: ts.sum(ts.exp(x)), ts.asarray([1.0, 2.0]), dtypes=("bf16",), show=False)
    >>> [row["op"] for row in r.rows]
    ['exp', 'sum']
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor

__all__ = ["report", "PrecisionReport"]


def _run(fn, args):
    """(outputs of every op in order as float64 arrays, input indices per op)."""
    from ..fusion import mode
    from ..profiler.events import subscribe
    seen = []

    def sink(kind, payload):
        name, ins, out = payload[0], payload[1], payload[2]
        seen.append((name, [id(t) for t in ins if type(t) is Tensor], out))
    with no_grad(), mode("none"), subscribe(sink, kinds=("op",)), np.errstate(all="ignore"):
        fn(*args)
    index, ops = {}, []
    for i, (name, ins, out) in enumerate(seen):
        index[id(out)] = i
        ops.append((name, [index[j] for j in ins if j in index], out))
    rows = []
    for name, ins, out in ops:
        a = out.numpy()
        a = a.astype(np.float64) if (a.dtype.kind in "fiub" or a.dtype.kind == "V"
                                     or out.dtype.kind == "f") else np.abs(a).astype(np.float64)
        rows.append((name, ins, a, out.dtype))
    return rows


def _prepare(args, cand):
    out = []
    for a in args:
        if type(a) is Tensor and a.dtype.kind == "f":
            if cand in _dt._BY_NAME:
                a = a.astype(cand)
            elif a.ndim >= 2:
                from .quant import quantize
                a = quantize(a.astype(_dt.fp32), cand).dequantize(_dt.fp32)
            else:
                a = a.astype(_dt.fp32)
        out.append(a)
    return out


class PrecisionReport:
    """The table as data: `rows` (dicts), `suggestions` {candidate: [op names to
    keep in fp32]}; `str(report)` is the printed table."""

    def __init__(self, rows, suggestions):
        self.rows, self.suggestions = rows, suggestions

    def __str__(self):
        head = f"{'candidate':<18}{'#':>4}  {'op':<16}{'shape':<16}{'rel_error':>11}{'added':>11}" \
               f"{'overflow':>10}{'underflow':>10}  keep fp32?"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r['candidate']:<18}{r['index']:>4}  {r['op']:<16}{str(r['shape']):<16}"
                         f"{r['rel_error']:>11.2e}{r['added_error']:>11.2e}{r['overflow']:>10}"
                         f"{r['underflow']:>10}  {'yes' if r['keep_fp32'] else ''}")
        for c, ops in self.suggestions.items():
            lines.append(f"{c}: keep in fp32: {', '.join(ops) if ops else '(nothing)'}")
        return "\n".join(lines)

    __repr__ = __str__


@np.errstate(all="ignore")  # the inf/NaN a candidate produces are what is being reported
def report(fn, *args, dtypes=("bf16", "fp16", "int8_per_channel"), threshold=1e-2, show=True):
    """Compare `fn(*args)` run at each candidate precision with float64, op by op
    (see the module docstring). Prints the table when `show`; returns a
    `PrecisionReport`."""
    from .quant import SCHEMES
    for c in dtypes:
        if c not in SCHEMES and (c not in _dt._BY_NAME or _dt.get_dtype(c).kind != "f"):
            raise ValueError(f"[report] candidate {c!r} is neither a float dtype nor a quantization "
                             f"scheme ({', '.join(SCHEMES)})")
    ref = _run(fn, [a.astype(_dt.fp64) if type(a) is Tensor and a.dtype.kind == "f" else a
                    for a in args])
    rows, suggestions = [], {}
    for cand in dtypes:
        run = _run(fn, _prepare(args, cand))
        if [r[0] for r in run] != [r[0] for r in ref]:
            raise ValueError(f"[report] fn ran different ops in {cand} than in fp64: "
                             f"{[r[0] for r in run][:8]} vs {[r[0] for r in ref][:8]}")
        limit = _dt.finfo(cand).max if cand in _dt._BY_NAME else _dt.finfo("fp32").max
        errs, overs, keep = [], [], []
        for i, ((name, ins, a, odt), (_, _, r, _)) in enumerate(zip(run, ref)):
            fin = np.isfinite(r)
            d = np.where(fin, a - r, 0.0)
            nr = float(np.linalg.norm(np.where(fin, r, 0.0)))
            err = float(np.linalg.norm(d)) / nr if nr > 0 else float(np.linalg.norm(d))
            err = err if np.isfinite(err) else float("inf")
            errs.append(err)
            added = max(0.0, err - max((errs[j] for j in ins), default=0.0))
            over = int(np.sum(fin & ((np.abs(r) > limit) | ~np.isfinite(a))))
            under = int(np.sum(fin & (r != 0) & (a == 0))) if odt.kind == "f" else 0
            overs.append(over)
            # an overflow inherited from an input is that input's fault, not this op's
            flag = added > threshold or (over > 0 and not any(overs[j] for j in ins)) or under > 0
            if flag and name not in keep:
                keep.append(name)
            rows.append({"candidate": cand, "index": i, "op": name, "shape": tuple(a.shape),
                         "rel_error": err, "added_error": added, "overflow": over,
                         "underflow": under, "keep_fp32": flag})
        suggestions[cand] = keep
    rep = PrecisionReport(rows, suggestions)
    if show:
        print(rep)
    return rep
