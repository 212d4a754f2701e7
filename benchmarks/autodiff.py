"""Autodiff cost: one training step of an MLP (batch 64, 784-256-256-10, ReLU,
cross-entropy, SGD with momentum and Adam) in tessera vs PyTorch CPU, same run,
same initial weights; and the added cost of recording the tape per op (add of
small tensors with requires_grad vs without), tessera vs torch.

    .venv/bin/python benchmarks/autodiff.py [--quick]

Targets: tessera/PyTorch step time <= 1.0x; the tape's added cost per op <= 2x
autograd's. tessera and torch are timed in alternating rounds and each gets its
best round (the steadiest number on a shared, loaded machine; medians in
brackets); the load average is printed at the start and the end.
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, interleaved, load_line, table  # noqa: E402

import tessera as ts  # noqa: E402
from tessera import nn  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

SIZES = (784, 256, 256, 10)
BATCH = 64


def init_weights(seed=0):
    rng = np.random.default_rng(seed)
    ws = []
    for i, o in zip(SIZES[:-1], SIZES[1:]):
        b = 1 / np.sqrt(i)
        ws.append((rng.uniform(-b, b, (o, i)).astype(np.float32),
                   rng.uniform(-b, b, (o,)).astype(np.float32)))
    return ws


def data(seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((BATCH, SIZES[0]), dtype=np.float32),
            rng.integers(0, SIZES[-1], BATCH))


def tessera_step(opt_name):
    layers = []
    for w, b in init_weights():
        lin = nn.Linear(w.shape[1], w.shape[0])
        lin.load_state_dict({"weight": w, "bias": b})
        layers += [lin, nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    opt = ts.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if opt_name == "SGD" \
        else ts.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data()
    x, y = ts.asarray(x), ts.asarray(y, dtype="int64")

    def step():
        opt.zero_grad()
        loss = ts.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def torch_step(opt_name):
    layers = []
    for w, b in init_weights():
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if opt_name == "SGD" \
        else torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    lossf = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = lossf(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = ap.parse_args()
    header("tessera autodiff: MLP training step and tape-recording cost")
    tv = f"{torch.__version__} ({torch.get_num_threads()} threads)" if torch else "absent"
    env = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    from tessera.backend.cpu import blas_threads
    env["numpy BLAS threads"] = blas_threads()  # tessera's budget, see backend/cpu.py
    print(f"# numpy {np.__version__}, torch {tv}, tessera {ts.__version__}, {env}\n")

    print(f"# {load_line()} (start)\n")

    number, repeat = (5, 5) if args.quick else (5, 31)
    print(f"## MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, ReLU, cross-entropy: "
          f"ms per training step (best of {repeat} alternating rounds of {number}; "
          "median in brackets)")
    rows = []
    for opt_name in ("SGD", "Adam"):
        steps = {"tessera": tessera_step(opt_name)}
        l0 = float(steps["tessera"]())
        if torch is not None:
            steps["torch"] = torch_step(opt_name)
            p0 = float(steps["torch"]().detach())
        res = interleaved(steps, repeat, number, warmup=3)
        tt, tm = (v * 1e3 for v in res["tessera"])
        row = {"optimizer": opt_name, "tessera ms": f"{tt:.2f} [{tm:.2f}]"}
        if torch is not None:
            tp, pm = (v * 1e3 for v in res["torch"])
            row.update({"torch ms": f"{tp:.2f} [{pm:.2f}]", "tessera/torch": f"{tt / tp:.2f}x",
                        "first-step loss ts / torch": f"{l0:.5f} / {p0:.5f}"})
        rows.append(row)
    table(rows, ["optimizer", "tessera ms", "torch ms", "tessera/torch",
                 "first-step loss ts / torch"])

    n2, r2 = (200, 15) if args.quick else (500, 61)
    print(f"## Tape recording: add of two 4-element fp32 tensors, us per op "
          f"(best of {r2} alternating rounds of {n2})")
    v = np.arange(4.0, dtype=np.float32)
    libs = {"tessera": lambda v, rg: ts.asarray(v, requires_grad=rg)}
    if torch is not None:
        libs["torch"] = lambda v, rg: torch.tensor(v, requires_grad=rg)
    fns = {}
    for name, make in libs.items():
        for rg in (False, True):
            a, b = make(v, rg), make(v + 1, rg)
            fns[(name, rg)] = (lambda a, b: lambda: a + b)(a, b)
    res = interleaved(fns, r2, n2)
    rows, added = [], {}
    for name in libs:
        p, g = res[(name, False)][0] * 1e6, res[(name, True)][0] * 1e6
        added[name] = g - p
        rows.append({"library": name, "plain us": f"{p:.2f}", "requires_grad us": f"{g:.2f}",
                     "recording adds us": f"{g - p:.2f}"})
    table(rows, ["library", "plain us", "requires_grad us", "recording adds us"])
    if "torch" in added:
        r = added["tessera"] / added["torch"]
        print(f"tape cost tessera/torch: {r:.2f}x (target <= 2x: {'met' if r <= 2 else 'NOT met'})")
    print(f"# {load_line()} (end)")


if __name__ == "__main__":
    main()
