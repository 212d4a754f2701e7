"""The autotuner's search space: which configurations are tried for a function.

A configuration is a dict with any of
  "tile_sizes": (BM, BN, BK) of tessera's tiled matmul (GPU; validated against the
                kernel's thread, shared-memory and register limits, so only runnable
                tiles are tried), or None for the library's own choice;
  "threads":    OpenMP threads of the generated C kernels (CPU);
  "fusion":     the fusion mode ("none", "default", "aggressive").
Axes the user's hint already fixes are not searched. tessera's matmul kernel has
no pipeline stages or split-K parameters (matmul.cu's template is BM, BN, BK and
the micro-tile), so those axes do not exist here.

    >>> [c["threads"] for c in cpu_space(4, fusion=("default",))]
    [1, 2, 4]
"""
from __future__ import annotations

import itertools
import os

from ..fusion import MODES
from ..kernels.launchers.geometry import _check_tile

MATMUL_BM_BN = (32, 64, 128, 256)
MATMUL_BK = (8, 16, 32, 64)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_counts(ncpu: int) -> list:
    """1, 2, 4, ... up to ncpu, and ncpu itself."""
    out, n = [], 1
    while n < ncpu:
        out.append(n)
        n *= 2
    return out + [ncpu]


def legal_tiles(dtypes, platform="cuda") -> list:
    """Every (BM, BN, BK) of the grid that tessera's matmul kernel can run for all
    `dtypes` on `platform`, largest first."""
    out = []
    for bm, bn, bk in itertools.product(MATMUL_BM_BN, MATMUL_BM_BN, MATMUL_BK):
        try:
            for dt in dtypes:
                _check_tile(dt, (bm, bn, bk), platform)
        except ValueError:
            continue
        out.append((bm, bn, bk))
    return sorted(out, key=lambda t: (-t[0] * t[1], -t[2]))


def cpu_space(ncpu=None, fusion=MODES):
    """Thread counts x fusion modes for the CPU's generated C kernels."""
    return [{"threads": t, "fusion": f} for f in fusion for t in thread_counts(ncpu or cpu_count())]


def gpu_space(dtypes, platform="cuda", fusion=MODES, max_tiles=8):
    """None (the library's choice: tessera's measured pick between its kernel and
    cuBLAS) plus up to `max_tiles` legal tiles spread over the sizes, x fusion modes."""
    tiles = legal_tiles(dtypes, platform) if dtypes else []
    if len(tiles) > max_tiles:
        step = len(tiles) / max_tiles
        tiles = [tiles[int(i * step)] for i in range(max_tiles)]
    return [{"tile_sizes": t, "fusion": f} for f in fusion for t in [None] + tiles]


def restrict(space, fixed):
    """Drop the axes a user's hint fixes (`fixed`: {axis: value}), deduplicated."""
    out, seen = [], set()
    for c in space:
        c = {k: v for k, v in c.items() if k not in fixed}
        c.update(fixed)
        key = tuple(sorted((k, repr(v)) for k, v in c.items()))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
