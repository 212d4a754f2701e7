"""Eager dispatch overhead: per-op time on tiny tensors (where the op's math is
nothing and the Python front end is everything), tessera vs NumPy (CuPy on a GPU)
vs PyTorch on the same device in the same run, with and without requires_grad;
then big-tensor elementwise ops and a reduction (2^22 elements).

    .venv/bin/python benchmarks/dispatch.py [--quick] [--device cpu|cuda|all]

--device: default tessera's default device, plus a CPU table first when that is a
GPU. PyTorch always runs on the device of the table (torch.device('cuda') for a
cuda table); where this torch has no CUDA, the torch column of that table is
skipped, never filled in from another device. On a GPU every timed round ends
with both libraries' synchronize, and tessera's results are realized (a deferred
elementwise op has not launched yet), so the times count the work, not its issue.

Targets: tessera/PyTorch median ratio <= 2x on the small ops; big ops within
1.1x of the array library (NumPy / CuPy). The libraries are timed in alternating
rounds (numpy, torch, tessera, numpy, ...) and each gets its best round: on a
shared, loaded machine that is the number least disturbed by other processes (the
medians are printed too). The load average is printed at the start and the end.
"""
import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (SMOKE, add_device_arg, bench_devices, cupy_module, header, interleaved, load_line,  # noqa: E402
                     table, tessera_sync, torch_device)

import tessera as ts  # noqa: E402

try:
    import torch
except ImportError:  # the tessera and NumPy columns still mean something
    torch = None


def versions():
    tv = f"{torch.__version__} ({torch.get_num_threads()} threads)" if torch else "absent"
    env = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    from tessera.backend.cpu import blas_threads
    env["numpy BLAS threads"] = blas_threads()  # tessera's budget, see backend/cpu.py
    print(f"# numpy {np.__version__}, torch {tv}, tessera {ts.__version__}, {env}\n")


def small_cases(lib, requires_grad, dev, tdev=None):
    """name -> zero-argument callable running one op on tiny tensors of `lib` on `dev`
    (`tdev`: torch's device for the same). tessera's results are realized: on a GPU an
    elementwise op is deferred, and an op that never launches is not the op timed."""
    a4 = np.arange(1.0, 5.0, dtype=np.float32)
    m4 = np.arange(16.0, dtype=np.float32).reshape(4, 4)
    if lib in ("numpy", "cupy"):
        xp = np if lib == "numpy" else cupy_module(dev)
        a, b, m = (xp.asarray(v) for v in (a4, a4 + 1, m4))
        return {"add (4)": lambda: a + b, "mul (4)": lambda: a * b, "sum (4)": lambda: xp.sum(a),
                "matmul 4x4": lambda: m @ m, "x[1]": lambda: a[1]}
    if lib == "torch":
        a, b, m = (torch.tensor(v, device=tdev, requires_grad=requires_grad) for v in (a4, a4 + 1, m4))
        return {"add (4)": lambda: a + b, "mul (4)": lambda: a * b, "sum (4)": lambda: torch.sum(a),
                "matmul 4x4": lambda: m @ m, "x[1]": lambda: a[1]}
    a, b, m = (ts.asarray(v, device=dev, requires_grad=requires_grad) for v in (a4, a4 + 1, m4))
    return {"add (4)": lambda: (a + b).realize(), "mul (4)": lambda: (a * b).realize(),
            "sum (4)": lambda: ts.sum(a).realize(), "matmul 4x4": lambda: (m @ m).realize(),
            "x[1]": lambda: a[1].realize()}


def big_cases(lib, n, dev, tdev=None):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    if lib in ("numpy", "cupy"):
        xp = np if lib == "numpy" else cupy_module(dev)
        x, y = xp.asarray(x), xp.asarray(y)
        return {"add": lambda: x + y, "mul": lambda: x * y, "sum": lambda: x.sum(),
                "exp": lambda: xp.exp(x)}
    if lib == "torch":
        x, y = torch.from_numpy(x).to(tdev), torch.from_numpy(y).to(tdev)
        return {"add": lambda: x + y, "mul": lambda: x * y, "sum": lambda: x.sum(),
                "exp": lambda: torch.exp(x)}
    a, b = ts.asarray(x, device=dev), ts.asarray(y, device=dev)
    # .realize(): a lazy result is computed when used; time the computation, not the deferral.
    return {"add": lambda: (a + b).realize(), "mul": lambda: (a * b).realize(),
            "sum": lambda: ts.sum(a).realize(), "exp": lambda: ts.exp(a).realize()}


def _libs(dev):
    """{library: (torch device or None, sync or None)} for one table, and a note."""
    peer = "numpy" if dev.type == "cpu" else "cupy"
    libs = {peer: (None, None if dev.type == "cpu" else cupy_module(dev).cuda.Device().synchronize)}
    _, tdev, tsync = torch_device(dev) if torch is not None else (None, None, "torch is not installed")
    note = None
    if tdev is None:
        note = f"# torch column skipped on {dev}: {tsync}"
    else:
        libs["torch"] = (tdev, tsync)
    libs["tessera"] = (None, tessera_sync(dev))
    return peer, libs, note


def small_table(dev, number, repeat):
    peer, libs, note = _libs(dev)
    print(f"## {dev}, small tensors: microseconds per op (best of {repeat} alternating rounds of "
          f"{number} calls, each round ending with its library's synchronize; median in brackets)")
    if note:
        print(note)
    rows, ratios = [], []
    for rg in (False, True):
        cases = {k: small_cases(k, rg, dev, td) for k, (td, _) in libs.items()}
        syncs = {k: sy for k, (_, sy) in libs.items()}
        for name in cases["tessera"]:
            res = interleaved({k: v[name] for k, v in cases.items()}, repeat, number, syncs=syncs)
            t = {k: (b * 1e6, m * 1e6) for k, (b, m) in res.items()}
            r = t["tessera"][0] / t["torch"][0] if "torch" in t else float("nan")
            if "torch" in t:
                ratios.append(r)
            rows.append({"op": name, "requires_grad": "yes" if rg else "no",
                         f"{peer} us": "%.2f [%.2f]" % t[peer],
                         "torch us": "%.2f [%.2f]" % t["torch"] if "torch" in t else "skipped",
                         "tessera us": "%.2f [%.2f]" % t["tessera"],
                         "tessera/torch": f"{r:.2f}x" if "torch" in t else "-"})
    table(rows, ["op", "requires_grad", f"{peer} us", "torch us", "tessera us", "tessera/torch"])
    if ratios:
        med = statistics.median(ratios)
        print(f"median tessera/torch ratio on {dev}: {med:.2f}x (target <= 2x: "
              f"{'met' if med <= 2 else 'NOT met'})\n")
    else:
        print(f"no torch on {dev}: no tessera/torch ratio\n")


def big_table(dev, n, bn, brep):
    peer, libs, note = _libs(dev)
    print(f"## {dev}, big tensors (2^{n.bit_length() - 1} = {n} fp32 elements): milliseconds "
          f"per op (best of {brep} alternating rounds of {bn}, synchronized; median in brackets)")
    if note:
        print(note)
    cases = {k: big_cases(k, n, dev, td) for k, (td, _) in libs.items()}
    syncs = {k: sy for k, (_, sy) in libs.items()}
    rows, ratios = [], []
    for name in cases[peer]:
        res = interleaved({k: v[name] for k, v in cases.items()}, brep, bn, syncs=syncs)
        row = {"op": name}
        for k, (b, m) in res.items():
            row[f"{k} ms"] = f"{b * 1e3:.3f} [{m * 1e3:.3f}]"
        tt = res["tessera"][0]
        ratios.append(tt / res[peer][0])
        row[f"tessera/{peer}"] = f"{tt / res[peer][0]:.2f}x"
        if "torch" in res:
            row["tessera/torch"] = f"{tt / res['torch'][0]:.2f}x"
        rows.append(row)
    table(rows, ["op", f"{peer} ms", "torch ms", "tessera ms", f"tessera/{peer}", "tessera/torch"])
    worst = max(ratios)
    print(f"worst tessera/{peer} ratio on {dev}: {worst:.2f}x (target <= 1.1x: "
          f"{'met' if worst <= 1.1 else 'NOT met'})\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    add_device_arg(ap)
    args = ap.parse_args()
    devices = bench_devices(args.device)
    number, repeat = (200, 15) if args.quick else (500, 61)
    n, bn, brep = 1 << 22, *((3, 5) if args.quick else (5, 21))
    if SMOKE:
        number, repeat, n, bn, brep = 5, 2, 1 << 12, 1, 2
    header("tessera eager dispatch overhead (small ops) and big elementwise ops", devices)
    versions()
    print(f"# {load_line()} (start)\n")
    for dev in devices:
        small_table(dev, number, repeat)
    for dev in devices:
        big_table(dev, n, bn, brep)
    print(f"# {load_line()} (end)")


if __name__ == "__main__":
    main()
