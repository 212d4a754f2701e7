"""Shared benchmark helpers: a header with device/date/command, robust timing
(median of repeats, synchronizing the GPU), and a ratio table printer."""
from __future__ import annotations

import datetime
import platform
import statistics
import sys
import time


def header(title):
    import tessera as ts
    dev = ts.default_device()
    print(f"# {title}")
    print(f"# date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"# command: {' '.join([sys.executable.split('/')[-1]] + sys.argv)}")
    desc = platform.processor() or platform.machine()
    if dev.type == "cuda":
        import cupy
        desc = cupy.cuda.runtime.getDeviceProperties(dev.index)["name"].decode()
    import os
    print(f"# device: {dev} ({desc}), {os.cpu_count()} CPU cores, python {platform.python_version()}")
    print()


def timeit(fn, repeat=7, number=1, sync=None, warmup=1):
    """Median seconds per call of fn()."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t) / number)
    return statistics.median(times)


def table(rows, cols):
    """Print rows (dicts) as an aligned table with the given column order."""
    widths = [max(len(c), *(len(_fmt(r.get(c, ""))) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(_fmt(r.get(c, "")).ljust(w) for c, w in zip(cols, widths)))
    print()


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def interleaved(fns, repeat=15, number=1, warmup=1):
    """Time several callables in alternating rounds (a, b, c, a, b, c, ...), so a
    burst of load from other processes hits all of them alike. Returns
    {name: (best, median)} in seconds per call; on a shared machine the best
    round is the steadiest A/B number."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            for _ in range(number):
                fn()
            times[k].append((time.perf_counter() - t) / number)
    return {k: (min(v), statistics.median(v)) for k, v in times.items()}


def load_line():
    """'load average: 1m 5m 15m' (os.getloadavg), for result files on shared machines."""
    import os
    try:
        a, b, c = os.getloadavg()
    except OSError:
        return "load average: n/a"
    return f"load average: {a:.2f} {b:.2f} {c:.2f} ({os.cpu_count()} CPUs)"
