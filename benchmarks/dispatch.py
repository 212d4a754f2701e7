"""Eager dispatch overhead: per-op time on tiny tensors (where the op's math is
nothing and the Python front end is everything), tessera vs NumPy vs PyTorch
CPU in the same run, with and without requires_grad; then big-tensor
elementwise ops and a reduction (2^22 elements) tessera vs NumPy.

    .venv/bin/python benchmarks/dispatch.py [--quick]

Targets: tessera/PyTorch median ratio <= 2x on the small ops; big ops within
1.1x of NumPy. Times are medians of repeats (timeit), in microseconds.
"""
import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table, timeit  # noqa: E402

import tessera as ts  # noqa: E402

try:
    import torch
except ImportError:  # the tessera and NumPy columns still mean something
    torch = None


def versions():
    tv = f"{torch.__version__} ({torch.get_num_threads()} threads)" if torch else "absent"
    env = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    print(f"# numpy {np.__version__}, torch {tv}, tessera {ts.__version__}, {env}\n")


def median_time(fn, number, repeat):
    return timeit(fn, repeat=repeat, number=number)


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
    number, repeat = (500, 7) if args.quick else (5000, 21)
    header("tessera eager dispatch overhead (small ops) and big elementwise ops")
    versions()

    print("## Small tensors: microseconds per op (median of %d x %d calls)" % (repeat, number))
    rows, ratios = [], []
    for rg in (False, True):
        libs = {"numpy": small_cases("numpy", rg), "tessera": small_cases("tessera", rg)}
        if torch is not None:
            libs["torch"] = small_cases("torch", rg)
        for name in libs["tessera"]:
            t = {k: median_time(v[name], number, repeat) * 1e6 for k, v in libs.items()}
            r = t["tessera"] / t["torch"] if "torch" in t else float("nan")
            ratios.append(r)
            rows.append({"op": name, "requires_grad": "yes" if rg else "no",
                         "numpy us": f"{t['numpy']:.2f}",
                         "torch us": f"{t.get('torch', float('nan')):.2f}",
                         "tessera us": f"{t['tessera']:.2f}", "tessera/torch": f"{r:.2f}x"})
    table(rows, ["op", "requires_grad", "numpy us", "torch us", "tessera us", "tessera/torch"])
    med = statistics.median(ratios)
    print(f"\nmedian tessera/torch ratio: {med:.2f}x (target <= 2x: "
          f"{'met' if med <= 2 else 'NOT met'})")

    n = 1 << 22
    bn, brep = (3, 5) if args.quick else (10, 9)
    print(f"\n## Big tensors (2^22 = {n} fp32 elements): milliseconds per op "
          f"(median of {brep} x {bn})")
    npc, tsc = big_cases("numpy", n), big_cases("tessera", n)
    rows, ratios = [], []
    for name in npc:
        tn = median_time(npc[name], bn, brep) * 1e3
        tt = median_time(tsc[name], bn, brep) * 1e3
        ratios.append(tt / tn)
        rows.append({"op": name, "numpy ms": f"{tn:.3f}", "tessera ms": f"{tt:.3f}",
                     "tessera/numpy": f"{tt / tn:.2f}x"})
    table(rows, ["op", "numpy ms", "tessera ms", "tessera/numpy"])
    worst = max(ratios)
    print(f"\nworst tessera/numpy ratio: {worst:.2f}x (target <= 1.1x: "
          f"{'met' if worst <= 1.1 else 'NOT met'})")


if __name__ == "__main__":
    main()
