"""Autodiff cost: one training step of an MLP (batch 64, 784-256-256-10, ReLU,
cross-entropy, SGD with momentum and Adam) in tessera vs PyTorch CPU, same run,
same initial weights; and the added cost of recording the tape per op (add of
small tensors with requires_grad vs without), tessera vs torch.

    .venv/bin/python benchmarks/autodiff.py [--quick]

Target: tessera/PyTorch step time <= 1.0x. Times are medians of repeats.
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table, timeit  # noqa: E402

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
    print(f"# numpy {np.__version__}, torch {tv}, tessera {ts.__version__}, {env}\n")

    number, repeat = (5, 5) if args.quick else (20, 9)
    print(f"## MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, ReLU, cross-entropy: "
          f"ms per training step (median of {repeat} x {number})")
    rows = []
    for opt_name in ("SGD", "Adam"):
        ts_step = tessera_step(opt_name)
        l0 = float(ts_step())
        tt = timeit(ts_step, repeat=repeat, number=number, warmup=3) * 1e3
        row = {"optimizer": opt_name, "tessera ms": f"{tt:.2f}"}
        if torch is not None:
            pt_step = torch_step(opt_name)
            p0 = float(pt_step().detach())
            tp = timeit(pt_step, repeat=repeat, number=number, warmup=3) * 1e3
            row.update({"torch ms": f"{tp:.2f}", "tessera/torch": f"{tt / tp:.2f}x",
                        "first-step loss ts / torch": f"{l0:.5f} / {p0:.5f}"})
        rows.append(row)
    table(rows, ["optimizer", "tessera ms", "torch ms", "tessera/torch",
                 "first-step loss ts / torch"])

    n2, r2 = (500, 7) if args.quick else (5000, 21)
    print(f"## Tape recording: add of two 4-element fp32 tensors, us per op "
          f"(median of {r2} x {n2})")
    rows = []
    libs = [("tessera", lambda v, rg: ts.asarray(v, requires_grad=rg))]
    if torch is not None:
        libs.append(("torch", lambda v, rg: torch.tensor(v, requires_grad=rg)))
    v = np.arange(4.0, dtype=np.float32)
    for name, make in libs:
        t = {}
        for rg in (False, True):
            a, b = make(v, rg), make(v + 1, rg)
            t[rg] = timeit(lambda: a + b, repeat=r2, number=n2) * 1e6
        rows.append({"library": name, "plain us": f"{t[False]:.2f}",
                     "requires_grad us": f"{t[True]:.2f}",
                     "recording adds us": f"{t[True] - t[False]:.2f}"})
    table(rows, ["library", "plain us", "requires_grad us", "recording adds us"])


if __name__ == "__main__":
    main()
