"""Shared benchmark helpers: a header with device/date/command, robust timing
(median of repeats, synchronizing the GPU), and a ratio table printer."""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time

# The environment before any library was imported: workers start from it, since
# `import tessera` sets OMP_WAIT_POLICY in os.environ and children would inherit it.
START_ENV = dict(os.environ)


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


class Worker:
    """A benchmark subject in a process of its own: `python -m <script> --worker
    <args...>` builds it and then answers lines on stdin ("<n>": run n calls, reply
    with the seconds they took; "info": reply with the subject's info line).

    Why a process each: libraries set process-wide state at import (tessera sets
    OMP_WAIT_POLICY=PASSIVE and NumPy's BLAS threads, torch starts its OpenMP pool),
    and in one process the first import decides the other's threading: measured on
    2 cores, torch's MLP step went from 1.0 ms to 2.5 ms when tessera was imported
    first. Each subject runs with its own defaults, as its users would see it."""

    def __init__(self, script, *args):
        import subprocess
        self.proc = subprocess.Popen([sys.executable, script, "--worker", *map(str, args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1, env=START_ENV)
        self.info = self._ask("info")

    def _ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"benchmark worker {self.proc.args} exited "
                               f"(status {self.proc.poll()})")
        return reply.strip()

    def __call__(self, number):
        return float(self._ask(str(number)))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def serve(fn, info=""):
    """The worker side of `Worker`: time `fn` on request until stdin closes."""
    for line in sys.stdin:
        line = line.strip()
        if line == "info":
            print(info, flush=True)
            continue
        n = int(line)
        t = time.perf_counter()
        for _ in range(n):
            fn()
        print(repr(time.perf_counter() - t), flush=True)


def interleaved_workers(workers, repeat=15, number=1, warmup=1, pause=0.02):
    """As `interleaved`, for `Worker`s (each round runs `number` calls in the
    worker's process). Returns {name: (best, median)} seconds per call.

    `pause` seconds pass before each round: OpenMP workers of the previous round's
    process may still be spinning (libgomp's default spins a few ms after each
    parallel region), and would otherwise take a core from the next round."""
    for w in workers.values():
        w(warmup)
    times = {k: [] for k in workers}
    for _ in range(repeat):
        for k, w in workers.items():
            time.sleep(pause)
            times[k].append(w(number) / number)
    return {k: (min(v), statistics.median(v)) for k, v in times.items()}
