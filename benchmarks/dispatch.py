"""Eager dispatch overhead: per-op time on tiny tensors (where the op's math is
nothing and the Python front end is everything), tessera vs NumPy vs PyTorch
CPU in the same run, with and without requires_grad; then big-tensor
elementwise ops and a reduction (2^22 elements) tessera vs NumPy.

    .venv/bin/python benchmarks/dispatch.py [--quick]

Targets: tessera/PyTorch median ratio <= 2x on the small ops; big ops within
1.1x of NumPy. The libraries are timed in alternating rounds (numpy, torch,
tessera, numpy, ...) and each gets its best round: on a shared, loaded machine
that is the number least disturbed by other processes (the medians are printed
too). The load average is printed at the start and the end.
"""
import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, interleaved, load_line, table  # noqa: E402

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


def small_cases(lib, requires_grad):
    """name -> zero-argument callable running one op on tiny tensors of `lib`."""
    a4 = np.arange(1.0, 5.0, dtype=np.float32)
    m4 = np.arange(16.0, dtype=np.float32).reshape(4, 4)
    if lib == "numpy":
        a, b, m = a4, a4 + 1, m4
    elif lib == "torch":
        a, b, m = (torch.tensor(v, requires_grad=requires_grad) for v in (a4, a4 + 1, m4))
    else:
        a, b, m = (ts.asarray(v, requires_grad=requires_grad) for v in (a4, a4 + 1, m4))
    sum_ = np.sum if lib == "numpy" else (torch.sum if lib == "torch" else ts.sum)
    return {
        "add (4)": lambda: a + b,
        "mul (4)": lambda: a * b,
        "sum (4)": lambda: sum_(a),
        "matmul 4x4": lambda: m @ m,
        "x[1]": lambda: a[1],
    }


def big_cases(lib, n):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    if lib == "numpy":
        return {"add": lambda: x + y, "mul": lambda: x * y, "sum": lambda: x.sum(),
                "exp": lambda: np.exp(x)}
    a, b = ts.asarray(x), ts.asarray(y)
    # .realize(): a lazy result is computed when used; time the computation, not the deferral.
    return {"add": lambda: (a + b).realize(), "mul": lambda: (a * b).realize(),
            "sum": lambda: ts.sum(a).realize(), "exp": lambda: ts.exp(a).realize()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = ap.parse_args()
    number, repeat = (200, 15) if args.quick else (500, 61)
    header("tessera eager dispatch overhead (small ops) and big elementwise ops")
    versions()
    print(f"# {load_line()} (start)\n")

    print(f"## Small tensors: microseconds per op (best of {repeat} alternating rounds of "
          f"{number} calls; median in brackets)")
    rows, ratios = [], []
    for rg in (False, True):
        libs = {"numpy": small_cases("numpy", rg), "tessera": small_cases("tessera", rg)}
        if torch is not None:
            libs["torch"] = small_cases("torch", rg)
        for name in libs["tessera"]:
            res = interleaved({k: v[name] for k, v in libs.items()}, repeat, number)
            t = {k: (b * 1e6, m * 1e6) for k, (b, m) in res.items()}
            nan = (float("nan"),) * 2
            r = t["tessera"][0] / t["torch"][0] if "torch" in t else float("nan")
            ratios.append(r)
            rows.append({"op": name, "requires_grad": "yes" if rg else "no",
                         "numpy us": "%.2f [%.2f]" % t["numpy"],
                         "torch us": "%.2f [%.2f]" % t.get("torch", nan),
                         "tessera us": "%.2f [%.2f]" % t["tessera"],
                         "tessera/torch": f"{r:.2f}x"})
    table(rows, ["op", "requires_grad", "numpy us", "torch us", "tessera us", "tessera/torch"])
    med = statistics.median(ratios)
    print(f"\nmedian tessera/torch ratio: {med:.2f}x (target <= 2x: "
          f"{'met' if med <= 2 else 'NOT met'})")

    n = 1 << 22
    bn, brep = (3, 5) if args.quick else (5, 21)
    print(f"\n## Big tensors (2^22 = {n} fp32 elements): milliseconds per op "
          f"(best of {brep} alternating rounds of {bn}; median in brackets)")
    npc, tsc = big_cases("numpy", n), big_cases("tessera", n)
    rows, ratios = [], []
    for name in npc:
        res = interleaved({"numpy": npc[name], "tessera": tsc[name]}, brep, bn)
        (tn, mn), (tt, mt) = res["numpy"], res["tessera"]
        ratios.append(tt / tn)
        rows.append({"op": name, "numpy ms": f"{tn * 1e3:.3f} [{mn * 1e3:.3f}]",
                     "tessera ms": f"{tt * 1e3:.3f} [{mt * 1e3:.3f}]",
                     "tessera/numpy": f"{tt / tn:.2f}x"})
    table(rows, ["op", "numpy ms", "tessera ms", "tessera/numpy"])
    worst = max(ratios)
    print(f"\nworst tessera/numpy ratio: {worst:.2f}x (target <= 1.1x: "
          f"{'met' if worst <= 1.1 else 'NOT met'})")
    print(f"# {load_line()} (end)")


if __name__ == "__main__":
    main()
