"""`autotune(fn, *args)`: measure the configurations of the search space on the
arguments' device, keep the fastest, store it in the disk cache, and return a
`TuneResult` whose `.hint` applies it (`with result.hint: ...`).

On a GPU the space is the tiled matmul's tile sizes (legal ones only) and the
fusion mode, timed with CUDA events; on the CPU the generated C kernels' OpenMP
thread count and the fusion mode, timed with the host clock. `fn` is run once per
configuration (plus a warm-up): it should not have side effects (an optimizer
step inside it would be taken once per configuration).

    >>> import tessera as ts
    >>> from tessera import schedule
    >>> r = schedule.autotune(lambda a: (a * 2 + 1).sum(), ts.ones((64, 64)), reps=1,
    ...                       space=[{"threads": 1}, {"threads": 2}], cache=False)
    >>> sorted(r.times_ms) == ["threads=1", "threads=2"]
    True
"""
from __future__ import annotations

import sys
import time

from ..errors import TesseraError
from ..fusion.render_cuda import CUDACompileError
from ..kernels.loader import KernelCompileError
from . import cache as _cache
from .measure import _leaves, time_ms
from .space import cpu_space, gpu_space, restrict


class AutotuneError(TesseraError, RuntimeError):
    """No configuration of the search space could run."""


_CONFIG_ERRORS = (TesseraError, ValueError, RuntimeError, KernelCompileError, CUDACompileError)
# modules whose CompileException a configuration may raise (CuPy's RawModule, the simulator's)
_COMPILERS = ("cupy.cuda.compiler", "tessera.sim.cuda")


def _config_errors():
    """What one configuration may fail with while the search goes on: tessera's errors,
    its compile errors, and the CompileException of a CuPy that is loaded. Read from
    sys.modules, never imported: where CuPy raised one, it is loaded."""
    extra = tuple(e for e in (getattr(sys.modules.get(m), "CompileException", None)
                              for m in _COMPILERS) if isinstance(e, type))
    return _CONFIG_ERRORS + extra


def label(cfg) -> str:
    parts = []
    for k in sorted(cfg):
        v = cfg[k]
        v = "x".join(map(str, v)) if isinstance(v, (tuple, list)) else v
        parts.append(f"{k}={v}")
    return ",".join(parts) or "default"


class TuneResult:
    """The winner (`config`), every configuration's time (`times_ms`, by label), the
    search time, the cache key and whether it came from the cache."""

    def __init__(self, key, config, times_ms, search_seconds, from_cache, failed=None):
        self.key, self.config, self.times_ms = key, dict(config), dict(times_ms)
        self.search_seconds, self.from_cache, self.failed = search_seconds, from_cache, failed or {}

    @property
    def hint(self):
        from ..schedule import hint
        return hint(origin="autotune", config=self.config, **self.config)

    def explain(self) -> str:
        lines = [f"autotune {self.key}", f"  chosen: {label(self.config)}"
                 f"{' (from the disk cache)' if self.from_cache else ''}",
                 f"  search: {self.search_seconds:.3f} s over {len(self.times_ms)} configuration(s)"]
        best = min(self.times_ms.values()) if self.times_ms else None
        for lab, t in sorted(self.times_ms.items(), key=lambda kv: kv[1]):
            lines.append(f"    {t:10.4f} ms  x{t / best:5.2f}  {lab}")
        for lab, why in self.failed.items():
            lines.append(f"    {'failed':>10}          {lab}: {why}")
        return "\n".join(lines)

    def __repr__(self):
        return f"TuneResult({label(self.config)}, from_cache={self.from_cache})"


def fn_id(fn) -> str:
    fn = getattr(fn, "__wrapped__", fn)
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def signature(args, kwargs=None):
    """(device, dtype names, shapes) of the tensor arguments."""
    ts = _leaves(list(args) + list((kwargs or {}).values()))
    if not ts:
        raise AutotuneError("[autotune] needs at least one tensor argument (the device, dtypes "
                            "and shapes of the cache key come from them)")
    return ts[0].device, [t.dtype.name for t in ts], [tuple(t.shape) for t in ts]


def default_space(device, dtypes, fixed):
    floats = [d for d in dict.fromkeys(dtypes) if d in ("fp64", "fp32", "fp16", "bf16")]
    if device.type == "cpu":
        space = cpu_space()
    else:
        from ..kernels.launchers._runtime import device_facts
        space = gpu_space(floats, device_facts()["platform"])
    return restrict(space, fixed)


def lookup(fn, args, kwargs=None):
    """The cached TuneResult for this call's signature, or None."""
    dev, dts, shapes = signature(args, kwargs)
    key = _cache.make_key(fn_id(fn), dev, dts, shapes)
    e = _cache.get(key)
    if e is None:
        return None
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in e["config"].items()}
    return TuneResult(key, cfg, e.get("times_ms", {}), e.get("search_seconds", 0.0), True)


def autotune(fn, *args, space=None, reps=5, rounds=2, cache=True, force=False, fixed=None,
             **kwargs):
    """Tune `fn` for these arguments (see the module docstring). `space`: a list of
    configuration dicts (default: the device's space); `fixed`: axes not searched;
    `cache=False`: neither read nor write the disk cache; `force`: search even when
    cached; each configuration is timed `rounds` times (median of `reps` calls each),
    interleaved, and its best time kept. Keyword arguments go to `fn`."""
    from ..schedule import hint
    fixed = dict(fixed or {})
    dev, dts, shapes = signature(args, kwargs)
    key = _cache.make_key(fn_id(fn), dev, dts, shapes)
    if cache and not force:
        hit = lookup(fn, args, kwargs)
        if hit is not None:
            return hit
    configs = restrict(space, fixed) if space is not None else default_space(dev, dts, fixed)
    raw = getattr(fn, "__wrapped__", fn) if getattr(fn, "schedule_hint", None) is not None else fn
    t0 = time.perf_counter()
    times, failed = {}, {}
    # `rounds` interleaved passes, the best time per configuration: a burst of load
    # from other processes then costs one sample, not the decision
    for _ in range(max(1, rounds)):
        for cfg in configs:
            lab = label(cfg)
            if lab in failed:
                continue
            try:
                with hint(origin="autotune", config=cfg, **cfg):
                    t = time_ms(lambda: raw(*args, **kwargs), dev, reps)
            except Exception as e:
                if not isinstance(e, _config_errors()):  # read now: the run may have loaded CuPy
                    raise  # a bug, not a configuration this device cannot run
                failed[lab] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
                continue
            times[lab] = min(t, times.get(lab, t))
    best = min((c for c in configs if label(c) in times), key=lambda c: times[label(c)], default=None)
    seconds = time.perf_counter() - t0
    if best is None:
        raise AutotuneError(f"[autotune] {fn_id(fn)}: no configuration ran; failures:\n  " +
                            "\n  ".join(f"{k}: {v}" for k, v in failed.items()))
    res = TuneResult(key, best, times, seconds, False, failed)
    if cache:
        _cache.put(key, {"config": {k: list(v) if isinstance(v, tuple) else v for k, v in best.items()},
                         "times_ms": times, "search_seconds": seconds,
                         "date": time.strftime("%Y-%m-%d %H:%M:%S")})
    return res


def tuned_call(fn, args, kwargs, fixed):
    """What `@schedule.hint(autotune=True)` runs: the cached or freshly tuned
    configuration for this signature, then `fn` under it."""
    res = autotune(fn, *args, fixed=fixed, **kwargs)
    _last[fn_id(fn)] = res
    with res.hint:
        return fn(*args, **kwargs)


_last: dict = {}  # fn id -> the TuneResult used by its latest tuned call (for explain)
