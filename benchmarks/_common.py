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

# TESSERA_BENCH_SMOKE=1: every benchmark runs its smallest sizes and fewest repeats.
# The numbers then mean nothing; it checks that the scripts run (benchmarks/gpu_pass.sh
# --smoke, or the CUDA code paths under TESSERA_CUDA_SIM=1, where kernels are slow).
SMOKE = os.environ.get("TESSERA_BENCH_SMOKE", "") not in ("", "0")


def tessera_sync(dev):
    """A callable that waits until tessera's work on `dev` is done: pending lazy groups
    are realized (a deferred op has not run yet) and the device's stream drained.
    Call it at the end of every timed region, as torch.cuda.synchronize for torch."""
    from tessera.fusion.lazy import flush_pending
    backend = dev.backend

    def sync():
        flush_pending("benchmark sync")
        backend.synchronize()
    return sync


def add_device_arg(ap):
    """The --device option every benchmark that compares devices takes."""
    ap.add_argument("--device", default=None,
                    help="cpu, cuda[:N] or all (default: tessera's default device, and the CPU "
                         "too when that is a GPU)")


def bench_devices(spec):
    """The tessera devices a benchmark's `--device` option names: None means tessera's
    default device, and when that is a GPU also the CPU (a table per device); "all"
    is the CPU plus the GPU where one is usable; otherwise the one device named."""
    import tessera as ts
    if spec in (None, "", "default"):
        dev = ts.default_device()
        return [ts.get_device("cpu"), dev] if dev.type != "cpu" else [dev]
    if spec in ("all", "both"):
        return [ts.get_device("cpu")] + ([ts.get_device("cuda")] if ts.cuda_is_available() else [])
    return [ts.get_device(spec)]


def torch_device(dev):
    """(torch, torch.device, sync) to run PyTorch on the same device as tessera's `dev`,
    or (torch or None, None, reason) when that cannot be done: a benchmark then skips its
    torch column for that device; it never compares libraries across devices."""
    try:
        import torch
    except ImportError:
        return None, None, "torch is not installed"
    if dev.type == "cpu":
        return torch, torch.device("cpu"), None
    if not torch.cuda.is_available():
        return torch, None, f"this torch ({torch.__version__}) has no CUDA device"
    tdev = torch.device("cuda", dev.index)

    def sync():
        torch.cuda.synchronize(tdev)
    return torch, tdev, sync


def cupy_module(dev=None):
    """The CuPy module tessera's CUDA backend uses for `dev` (the real one, or the
    simulated one under TESSERA_CUDA_SIM=1); peers must use the same."""
    import tessera as ts
    dev = ts.default_device() if dev is None else ts.get_device(dev)
    mod = getattr(dev.backend, "cupy", None) if dev.type == "cuda" else None
    if mod is None:
        import cupy as mod
    return mod


def cupyx_part(dev, path):
    """cupyx's `path` ("scipy.special", "scipy.sparse.linalg") from the cupyx tessera's
    CUDA backend uses for `dev`; raises ImportError/AttributeError where it has none."""
    import importlib

    import tessera as ts
    dev = ts.get_device(dev)
    cx = getattr(dev.backend, "cupyx", None)
    if cx is None:
        import cupyx as cx
    try:
        return importlib.import_module(f"{cx.__name__}.{path}")
    except ImportError:  # a stand-in module: its parts are attributes
        obj = cx
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj


def device_desc(dev):
    """'cuda:0 (NVIDIA H200)' / 'cpu (x86_64)'."""
    desc = platform.processor() or platform.machine()
    if dev.type == "cuda":
        try:
            name = cupy_module(dev).cuda.runtime.getDeviceProperties(dev.index)["name"]
            desc = name.decode() if isinstance(name, bytes) else str(name)
        except Exception as e:  # noqa: BLE001 - a header must not stop a benchmark
            desc = f"name unknown: {type(e).__name__}"
    return f"{dev} ({desc})"


def header(title, devices=None):
    """devices: the tessera devices the benchmark measures (default: the default device)."""
    import tessera as ts
    devices = devices or [ts.default_device()]
    print(f"# {title}")
    print(f"# date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"# command: {' '.join([sys.executable.split('/')[-1]] + sys.argv)}")
    print(f"# device: {', '.join(device_desc(d) for d in devices)}, {os.cpu_count()} CPU cores, "
          f"python {platform.python_version()}" + (" [SMOKE: tiny sizes, numbers meaningless]"
                                                   if SMOKE else ""))
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


def interleaved(fns, repeat=15, number=1, warmup=1, syncs=None):
    """Time several callables in alternating rounds (a, b, c, a, b, c, ...), so a
    burst of load from other processes hits all of them alike. Returns
    {name: (best, median)} in seconds per call; on a shared machine the best
    round is the steadiest A/B number. syncs: {name: callable} run at the end of
    each of that callable's timed rounds (and before its first), so that GPU work
    is counted, not just its issue."""
    syncs = syncs or {}
    for k, fn in fns.items():
        for _ in range(warmup):
            fn()
        if syncs.get(k):
            syncs[k]()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            sync = syncs.get(k)
            t = time.perf_counter()
            for _ in range(number):
                fn()
            if sync:
                sync()
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
        # Ask now, read later: workers created together start (import, build) in parallel.
        self.proc.stdin.write("info\n")
        self.proc.stdin.flush()
        self._info = None

    @property
    def info(self):
        if self._info is None:
            reply = self.proc.stdout.readline()
            if not reply:
                raise RuntimeError(f"benchmark worker {self.proc.args} exited "
                                   f"(status {self.proc.poll()})")
            self._info = reply.strip()
        return self._info

    def _ask(self, line):
        self.info  # the reply to the first question comes first
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


def serve(fn, info="", sync=None):
    """The worker side of `Worker`: time `fn` on request until stdin closes.
    sync: called at the end of each timed batch (GPU work is counted, not issued)."""
    for line in sys.stdin:
        line = line.strip()
        if line == "info":
            print(info, flush=True)
            continue
        n = int(line)
        t = time.perf_counter()
        for _ in range(n):
            fn()
        if sync:
            sync()
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
