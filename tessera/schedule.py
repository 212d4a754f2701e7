"""Schedule hints (the seed's section 7.2): `@schedule.hint(fusion=..., tile_sizes=...)`
makes the ops inside a function use that fusion mode and those tile sizes.

    from tessera import schedule, op

    @schedule.hint(fusion="aggressive", tile_sizes=[128, 128, 64])
    def matmul_tiled(A, B):
        return op.matmul(A, B)

Tile sizes are (M, N, K) for matmul and the matching dimensions for other tiled
kernels; they reach the kernels through `STATE.tile_hint`, which the GPU
backend reads when it picks an instantiation (the CPU backend runs BLAS and
records the hint for the Schedule IR). Pending fusion groups are realized when
the hinted scope is left, so the hint covers whole groups.
"""
from __future__ import annotations

import functools
import operator

from ._config import STATE
from .fusion import MODES


class Hint:
    """An immutable schedule hint: fusion mode, tile sizes, autotune flag."""
    __slots__ = ("fusion", "tile_sizes", "autotune", "extra")

    def __init__(self, fusion=None, tile_sizes=None, autotune=False, **extra):
        if fusion is not None and fusion not in MODES:
            raise ValueError(f"[schedule.hint] unknown fusion mode {fusion!r}; accepted: "
                             + ", ".join(MODES))
        if tile_sizes is not None:
            try:
                tile_sizes = tuple(operator.index(t) for t in tile_sizes)
            except TypeError:
                raise ValueError(f"[schedule.hint] tile_sizes must be integers, got "
                                 f"{tile_sizes!r}") from None
            if not tile_sizes or any(t <= 0 for t in tile_sizes):
                raise ValueError(f"[schedule.hint] tile sizes must be positive, got {tile_sizes}")
        self.fusion = fusion
        self.tile_sizes = tile_sizes
        self.autotune = bool(autotune)
        self.extra = extra

    def __repr__(self):
        return (f"Hint(fusion={self.fusion!r}, tile_sizes={self.tile_sizes}, "
                f"autotune={self.autotune})")


class hint:
    """Decorator (or context manager) applying a schedule hint inside a function."""

    def __init__(self, fusion=None, tile_sizes=None, autotune=False, **extra):
        self.h = Hint(fusion, tile_sizes, autotune, **extra)
        self._saved = []

    def __enter__(self):
        from .fusion.lazy import flush_pending
        flush_pending("schedule.hint scope entry")
        self._saved.append((STATE.fusion_mode, STATE.tile_hint))
        if self.h.fusion is not None:
            STATE.fusion_mode = self.h.fusion
        STATE.tile_hint = self.h
        return self.h

    def __exit__(self, *exc):
        from .fusion.lazy import flush_pending
        flush_pending("leaving a schedule.hint scope")
        STATE.fusion_mode, STATE.tile_hint = self._saved.pop()
        return False

    def __call__(self, fn):
        h = self

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with h:
                return fn(*args, **kwargs)
        wrapper.schedule_hint = self.h
        return wrapper


def current_hint():
    return STATE.tile_hint
