"""Launchers for grouped_matmul.cu: the expert step of a mixture of experts.

`grouped_matmul(x, w, offsets)`: rows [offsets[g], offsets[g+1]) of x (R, K) times
w[g] (K, N) (or w[g]^T with w (G, N, K) when `trans_w`), all groups in ONE launch;
`grouped_matmul_wgrad(x, dy, offsets)`: dW[g] = x_g^T @ dy_g, (G, K, N). Inputs are
CuPy arrays; offsets is int64 of length G + 1 starting at 0 and ending at R. The
launch geometry (`grouped_grid`, `wgrad_grid`) is pure Python, tested on the CPU.
"""
from __future__ import annotations

from . import _runtime as rt
from .registry import GROUPED_DTYPES, GROUPED_TILES, grouped_matmul_name, grouped_wgrad_name

__all__ = ["grouped_matmul", "grouped_matmul_wgrad", "grouped_grid", "wgrad_grid"]

THREADS = 256  # the kernels' 16x16 thread grid


def _cdiv(a, b):
    return (a + b - 1) // b


def grouped_grid(rows: int, groups: int, n: int, dtype: str) -> tuple:
    """(grid, block): grid.y bounds the (group, row tile) pairs, ceil(R/BM) + G,
    because each group's last tile may be partial; surplus blocks exit at once."""
    bm, bn, _ = GROUPED_TILES[dtype]
    return (_cdiv(n, bn), _cdiv(rows, bm) + groups, 1), (THREADS, 1, 1)


def wgrad_grid(groups: int, k: int, n: int, dtype: str) -> tuple:
    bm, bn, _ = GROUPED_TILES[dtype]
    return (_cdiv(n, bn), _cdiv(k, bm), groups), (THREADS, 1, 1)


def _check(op, x, other, offsets, dtype):
    c = rt.cp()
    dt = rt.dtype_name(x, dtype)
    if dt not in GROUPED_DTYPES:
        raise TypeError(f"[{op}] dtype {dt} not one of {', '.join(GROUPED_DTYPES)}")
    if rt.dtype_name(other, dtype) != dt:
        raise TypeError(f"[{op}] operands have different dtypes: {x.dtype} and {other.dtype}")
    offsets = c.ascontiguousarray(offsets, dtype=c.int64)
    return dt, c.ascontiguousarray(x), c.ascontiguousarray(other), offsets


def grouped_matmul(x, w, offsets, trans_w=False, dtype=None):
    """y (R, N) with y[r] = x[r] @ w[g(r)] (w (G, K, N)) or x[r] @ w[g(r)].T (w (G, N, K))."""
    dt, x, w, offsets = _check("grouped_matmul", x, w, offsets, dtype)
    G = w.shape[0]
    R, K = x.shape
    N = w.shape[1] if trans_w else w.shape[2]
    if (w.shape[2] if trans_w else w.shape[1]) != K or offsets.shape != (G + 1,):
        raise ValueError(f"[grouped_matmul] x {x.shape}, w {w.shape} (trans_w={trans_w}), offsets "
                         f"{offsets.shape}: need w (G, K, N) or (G, N, K) and G + 1 offsets")
    # rows past offsets[-1] (dropped tokens) are never written by the kernel: 0
    y = rt.cp().zeros((R, N), dtype=rt.storage(dt))
    if y.size == 0:
        return y
    grid, block = grouped_grid(R, G, N, dt)
    if grid[1] > 65535:  # CUDA's grid.y limit: about 4M sorted rows with 64-row tiles
        raise ValueError(f"[grouped_matmul] {R} rows in {G} groups need {grid[1]} row tiles; "
                         "at most 65535 per launch (split the tokens into chunks)")
    rt.launch("grouped_matmul.cu", grouped_matmul_name(dt, trans_w), grid, block,
              (x, w, y, offsets, rt.i64(G), rt.i64(N), rt.i64(K)))
    return y


def grouped_matmul_wgrad(x, dy, offsets, dtype=None):
    """dW (G, K, N) with dW[g] = x[rows of g].T @ dy[rows of g]."""
    dt, x, dy, offsets = _check("grouped_matmul_wgrad", x, dy, offsets, dtype)
    G = offsets.shape[0] - 1
    (R, K), N = x.shape, dy.shape[1]
    if dy.shape[0] != R:
        raise ValueError(f"[grouped_matmul_wgrad] x {x.shape} and dy {dy.shape} differ in rows")
    dw = rt.empty((G, K, N), dt)
    if dw.size == 0:
        return dw
    grid, block = wgrad_grid(G, K, N, dt)
    rt.launch("grouped_matmul.cu", grouped_wgrad_name(dt), grid, block,
              (x, dy, dw, offsets, rt.i64(N), rt.i64(K)))
    return dw
