"""Launchers for reductions (reduce.cu) and cumulative sums (scan.cu).

`reduce` takes the layouts tessera reduces every axis set into: "rows" reduces the
inner axis of a contiguous (rows, cols) array, "cols" the middle axis of a contiguous
(R, inner) or (outer, R, inner) array. One kernel launch per call.
"""
from __future__ import annotations

from . import _runtime as rt
from .geometry import cols_geometry, rows_geometry, scan_geometry
from .registry import CTYPE, REDUCE_OPS, acc_dtype, reduce_name, reduce_out_dtype, scan_out_dtype

_NO_IDENTITY = ("max", "min", "argmax", "argmin")


def reduce(x, op: str, layout: str = "rows", *, ddof: int = 0, dtype: str | None = None,
           out_dtype: str | None = None, out=None):
    """Reduce a contiguous CuPy array: (rows, cols) -> (rows,) for layout="rows";
    (R, inner) -> (inner,) or (outer, R, inner) -> (outer, inner) for layout="cols".
    op: sum mean prod max min argmax argmin var std all any logsumexp (as numpy's, with
    NaN propagating through max/min and argmax/argmin returning the first NaN)."""
    if op not in REDUCE_OPS:
        raise ValueError(f"[reduce] unknown op {op!r}; known: {', '.join(REDUCE_OPS)}")
    dt = rt.dtype_name(x, dtype)
    rt.require_contiguous("reduce", x)
    if layout == "rows":
        if x.ndim != 2:
            raise ValueError(f"[reduce] layout 'rows' needs a 2-D (rows, cols) array, got shape {x.shape}")
        (rows, n), res_shape = x.shape, x.shape[:1]
    elif layout == "cols":
        if x.ndim not in (2, 3):
            raise ValueError(f"[reduce] layout 'cols' needs (R, inner) or (outer, R, inner), got shape {x.shape}")
        outer, n, inner = (1,) + x.shape if x.ndim == 2 else x.shape
        res_shape = (inner,) if x.ndim == 2 else (outer, inner)
    else:
        raise ValueError(f"[reduce] layout must be 'rows' or 'cols', got {layout!r}")
    if n == 0 and op in _NO_IDENTITY:
        raise ValueError(f"[reduce] {op} of an empty axis (shape {x.shape}, layout {layout}) has no identity")
    od = out_dtype or reduce_out_dtype(op, dt)
    name = reduce_name(layout, op, dt, od)
    res = rt.empty(res_shape, od) if out is None else out
    if res.size == 0:
        return res
    if layout == "rows":
        grid, block = rows_geometry(rows, n, rt.device_facts()["warp_size"])
        args = (x, res, rt.i64(rows), rt.i64(n), float(ddof))
    else:
        grid, block = cols_geometry(outer, n, inner)
        args = (x, res, rt.i64(outer), rt.i64(n), rt.i64(inner), float(ddof))
    rt.launch("reduce.cu", name, grid, block, args)
    return res


def cumsum(x, *, dtype: str | None = None):
    """Inclusive cumulative sum along the last axis of a contiguous 1-D or 2-D array
    (as numpy.cumsum(x, axis=-1); integer and bool inputs give int64)."""
    dt = rt.dtype_name(x, dtype)
    rt.require_contiguous("cumsum", x)
    od = scan_out_dtype(dt)
    out = rt.empty(x.shape, od)
    if x.size == 0:
        return out
    if x.ndim not in (1, 2):
        raise ValueError(f"[cumsum] expects a 1-D or 2-D array, got shape {x.shape}")
    rows, n = (1, x.shape[0]) if x.ndim == 1 else x.shape
    segs, seg_len, grid, block = scan_geometry(rows, n, rt.device_facts()["sm_count"])
    name = f"scan_rows<{CTYPE[dt]},{CTYPE[od]}>"
    if segs == 1:  # scan.cu stores only when `write` is set: the one launch must write
        rt.launch("scan.cu", name, grid, block, (x, out, rt.i64(rows), rt.i64(n), rt.i64(seg_len),
                                                   rt.NULL, rt.NULL, True))
        return out
    ad = acc_dtype(dt)
    totals = rt.empty((rows, segs), ad)
    scanned = rt.empty((rows, segs), ad)
    rt.launch("scan.cu", name, grid, block, (x, out, rt.i64(rows), rt.i64(n), rt.i64(seg_len),
                                               rt.NULL, totals, False))
    acc_name = f"scan_rows<{CTYPE[ad]},{CTYPE[ad]}>"
    _, seg2, grid2, block2 = scan_geometry(rows, segs, 10**9)  # one segment per row
    rt.launch("scan.cu", acc_name, grid2, block2, (totals, scanned, rt.i64(rows), rt.i64(segs),
                                                     rt.i64(seg2), rt.NULL, rt.NULL, True))
    rt.launch("scan.cu", name, grid, block, (x, out, rt.i64(rows), rt.i64(n), rt.i64(seg_len),
                                               scanned, rt.NULL, True))
    return out
