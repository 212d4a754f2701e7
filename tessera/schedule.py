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

A hint the hardware cannot run is rejected when it is made, naming the limit:
(BM, BN, BK) tiles must fit one of tessera's matmul kernels (threads per block,
shared memory per block, the accumulator register budget, the 16/32 alignment of
the thread grid and tensor-core fragments); a one-entry `tile_sizes=[BLOCK]` is a
thread-block size (a warp multiple, at most 1024). The tiles are dynamic shared
memory, so a block may use what the device allows with the opt-in: 227 KB on
sm_90, 99 KB on sm_86, 64 KB on MI200. The device and the dtype are only known at
the matmul, so a hint is checked against the largest such GPU when it is made and
against the dtype's kernel on the actual device by the GPU launcher, with the same
message (128x128x64 needs 67,584 B in fp32: it runs on an H100 but not on an MI200;
in fp64 its 8x8 accumulators exceed the register budget everywhere);
`validate_tile_sizes(tiles, dtype, smem_limit=...)` checks ahead.
`threads=N` sets the OpenMP threads of the generated C kernels inside the scope.

`autotune(fn, *args)` and `hint(autotune=True)` search these settings and cache
the winner on disk (see tessera.autotune); `explain(fn)` shows what a function
runs with and what the search measured.
"""
from __future__ import annotations

import functools
import operator

from ._config import STATE
from .errors import TesseraError
from .fusion import MODES


class ScheduleError(TesseraError, ValueError):
    """A schedule hint the hardware (tessera's kernels on it) cannot run."""


def validate_tile_sizes(tile_sizes, dtype=None, platform="cuda", smem_limit=None):
    """Raise ScheduleError naming the limit unless `tile_sizes` can run: for a
    `dtype` ("fp32", ...), on that dtype's matmul kernel; without one, on at
    least one of the kernels (fp32/fp64 SIMT, fp16/bf16 tensor cores).
    `smem_limit`: a device's shared memory per block with the opt-in
    (device_facts()["smem_optin"]); None: the largest GPU of `platform`."""
    from .kernels.launchers.geometry import MAX_THREADS, _check_tile
    ts = tuple(tile_sizes)
    if len(ts) == 1:
        if ts[0] > MAX_THREADS or ts[0] % 32:
            raise ScheduleError(f"[schedule.hint] tile_sizes {list(ts)}: a thread block of {ts[0]} "
                                f"must be a multiple of the warp size 32 and at most {MAX_THREADS}")
        return
    if len(ts) != 3:
        return  # no kernel reads other tilings; the Schedule IR records them
    kinds = [(dtype, platform)] if dtype is not None else [("fp32", "cuda"), ("fp16", "cuda")]
    errors = []
    for dt, plat in kinds:
        try:
            _check_tile(getattr(dt, "name", dt), ts, plat, smem_limit)
            return
        except ValueError as e:
            errors.append(f"{getattr(dt, 'name', dt)} kernel: " + str(e).replace(f"[matmul] tile {ts}: ", ""))
    raise ScheduleError(f"[schedule.hint] tile_sizes {list(ts)} (BM, BN, BK) cannot run on tessera's "
                        "matmul kernels: " + "; ".join(errors))


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
            validate_tile_sizes(tile_sizes)
        threads = extra.get("threads")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"[schedule.hint] threads must be a positive int, got {threads!r}")
        self.fusion = fusion
        self.tile_sizes = tile_sizes
        self.autotune = bool(autotune)
        self.extra = extra

    @property
    def threads(self):
        return self.extra.get("threads")

    @property
    def config(self):
        """The autotuned configuration this hint applies (None for a user's hint)."""
        return self.extra.get("config")

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v in self.extra.items() if k != "config")
        return (f"Hint(fusion={self.fusion!r}, tile_sizes={self.tile_sizes}, "
                f"autotune={self.autotune}{extra})")


class hint:
    """Decorator (or context manager) applying a schedule hint inside a function."""

    def __init__(self, fusion=None, tile_sizes=None, autotune=False, **extra):
        self.h = Hint(fusion, tile_sizes, autotune, **extra)
        self._saved = []

    def __enter__(self):
        from .fusion.lazy import flush_pending
        flush_pending("schedule.hint scope entry")
        prev_threads = None
        if self.h.threads is not None:
            from .autotune.measure import set_threads
            prev_threads = set_threads(self.h.threads)
        self._saved.append((STATE.fusion_mode, STATE.tile_hint, prev_threads))
        if self.h.fusion is not None:
            STATE.fusion_mode = self.h.fusion
        STATE.tile_hint = self.h
        return self.h

    def __exit__(self, *exc):
        from .fusion.lazy import flush_pending
        try:
            flush_pending("leaving a schedule.hint scope")
        finally:
            STATE.fusion_mode, STATE.tile_hint, prev_threads = self._saved.pop()
            if prev_threads is not None:
                from .autotune.measure import set_threads
                set_threads(prev_threads)
        return False

    def __call__(self, fn):
        h = self
        if self.h.autotune:
            fixed = {k: v for k, v in (("fusion", self.h.fusion), ("tile_sizes", self.h.tile_sizes),
                                       ("threads", self.h.threads)) if v is not None}

            @functools.wraps(fn)
            def tuned(*args, **kwargs):
                from .autotune.tuner import tuned_call
                return tuned_call(fn, args, kwargs, fixed)
            tuned.schedule_hint = self.h
            return tuned

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with h:
                return fn(*args, **kwargs)
        wrapper.schedule_hint = self.h
        return wrapper


def current_hint():
    return STATE.tile_hint


def autotune(fn, *args, **kwargs):
    """Search tile sizes / threads / fusion mode for `fn(*args)` on the arguments'
    device and cache the winner on disk; returns a TuneResult (`.config`,
    `.times_ms`, `.hint` to apply it, `.explain()`). See tessera.autotune.tuner."""
    from .autotune.tuner import autotune as _autotune
    return _autotune(fn, *args, **kwargs)


def explain(fn=None) -> str:
    """What a hinted or autotuned function runs with (its hint, the configuration
    its latest call used, what the search measured), or without `fn` the active
    hint and every autotune entry cached for this machine's devices."""
    from .autotune import cache, tuner
    lines = []
    if fn is None:
        lines.append(f"active hint: {current_hint()!r}")
        lines.append(f"autotune cache: {cache.path()}")
        for key, e in sorted(cache.entries().items()):
            lines.append(f"  {key}: {tuner.label(e.get('config', {}))} "
                         f"(search {e.get('search_seconds', 0.0):.3f} s)")
        return "\n".join(lines)
    h = getattr(fn, "schedule_hint", None)
    name = tuner.fn_id(fn)
    lines.append(f"{name}: {h!r}" if h is not None else f"{name}: no schedule hint")
    res = tuner._last.get(name)
    if res is not None:
        lines.append(res.explain())
    else:
        for key, e in sorted(cache.entries().items()):
            if key.startswith(name + "|"):
                lines.append(f"  cached {key}: {tuner.label(e.get('config', {}))}")
    return "\n".join(lines)
