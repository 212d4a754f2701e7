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
