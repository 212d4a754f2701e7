"""Autodiff cost: one training step of an MLP (batch 64, 784-256-256-10, ReLU,
cross-entropy, SGD with momentum and Adam) in tessera vs PyTorch on the same
device, same run, same initial weights; and the added cost of recording the tape
per op (add of small tensors with requires_grad vs without), tessera vs torch.

    .venv/bin/python benchmarks/autodiff.py [--quick] [--device cpu|cuda|all]

--device: default tessera's default device, plus a CPU table first when that is a
GPU. torch's model and data go to the table's device (torch.device('cuda') for a
cuda table); where this torch has no CUDA, its column is skipped there, never
measured on another device. Each timed batch of steps ends with a synchronize of
its library (tessera: pending groups realized and the stream drained).

Targets: tessera/PyTorch step time <= 1.0x; the tape's added cost per op <= 2x
autograd's. tessera and torch are timed in alternating rounds and each gets its
best round (the steadiest number on a shared, loaded machine; medians in
brackets); the load average is printed at the start and the end.

The training steps run in one process per library (`_common.Worker`), each with
the threading defaults it sets for its own users: in one process, whichever
library is imported first decides the other's OpenMP behaviour (tessera's import
used to set OMP_WAIT_POLICY=PASSIVE, which made torch's step 2.5x slower here).
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (SMOKE, Worker, add_device_arg, bench_devices, header, interleaved_workers,  # noqa: E402
                     load_line, serve, table, tessera_sync)

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


def tessera_step(opt_name, device="cpu"):
    import tessera as ts
    from tessera import nn
    dev = ts.get_device(device)
    ts.set_default_device(dev)  # the worker's own process: everything it builds goes there
    layers = []
    for w, b in init_weights():
        lin = nn.Linear(w.shape[1], w.shape[0])
        lin.load_state_dict({"weight": w, "bias": b})
        layers += [lin, nn.ReLU()]
    model = nn.Sequential(*layers[:-1]).to(dev)
    opt = ts.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if opt_name == "SGD" \
        else ts.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data()
    x, y = ts.asarray(x, device=dev), ts.asarray(y, dtype="int64", device=dev)

    def step():
        opt.zero_grad()
        loss = ts.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step, tessera_sync(dev)


def torch_step(opt_name, device="cpu"):
    import torch
    tdev = torch.device(device)
    layers = []
    for w, b in init_weights():
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(tdev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if opt_name == "SGD" \
        else torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data()
    x, y = torch.from_numpy(x).to(tdev), torch.from_numpy(y).to(tdev)
    lossf = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = lossf(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step, (torch.cuda.synchronize if tdev.type == "cuda" else None)


def small_add(lib, requires_grad, device="cpu"):
    """`a + b` on two 4-element fp32 tensors (requires_grad or not): the tape's cost.
    tessera's sum is realized: on a GPU an elementwise op is deferred until used."""
    v = np.arange(4.0, dtype=np.float32)
    if lib == "tessera":
        import tessera as ts
        dev = ts.get_device(device)
        a, b = (ts.asarray(u, device=dev, requires_grad=requires_grad) for u in (v, v + 1))
        return (lambda: (a + b).realize()), tessera_sync(dev)
    import torch
    a, b = (torch.tensor(u, device=device, requires_grad=requires_grad) for u in (v, v + 1))
    return (lambda: a + b), (torch.cuda.synchronize if a.is_cuda else None)


def worker(lib, what, arg, device):
    """Build one subject in this process and serve timing requests (see _common.Worker)."""
    if what == "step":
        fn, sync = (tessera_step if lib == "tessera" else torch_step)(arg, device)
        loss = fn()
        info = f"{float(loss.detach()):.5f}"
    else:
        fn, sync = small_add(lib, arg == "grad", device)
        info = ""
    serve(fn, info, sync)


def library_line():
    """Versions and thread settings of both libraries, each seen from its own process."""
    import subprocess
    code = ("import os, numpy, {m}; print({expr})")
    ts_expr = ("f'tessera {tessera.__version__} (numpy BLAS threads "
               "{__import__(\"tessera.backend.cpu\").backend.cpu.blas_threads()}, "
               "GOMP_SPINCOUNT={os.environ.get(\"GOMP_SPINCOUNT\")})'")
    th_expr = ("f'torch {torch.__version__} ({torch.get_num_threads()} threads, "
               "OMP_WAIT_POLICY={os.environ.get(\"OMP_WAIT_POLICY\")})'")
    from _common import START_ENV
    out = []
    for m, expr in (("tessera", ts_expr), ("torch", th_expr)):
        r = subprocess.run([sys.executable, "-c", code.format(m=m, expr=expr)],
                           capture_output=True, text=True, env=START_ENV)
        out.append(r.stdout.strip() or f"{m} absent")
    return ", ".join(out)


def _torch_devices():
    """The device types torch has here, asked in a process of its own (importing torch
    here would set this process's threading, see above): set() when torch is absent."""
    import importlib.util
    import subprocess
    if importlib.util.find_spec("torch") is None:
        return set()
    from _common import START_ENV
    r = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                       capture_output=True, text=True, env=START_ENV)
    return {"cpu", "cuda"} if r.stdout.strip() == "True" else {"cpu"}


def start_workers(dev, libs):
    """Every subject for one device, started together (their imports and builds overlap):
    ({optimizer: {lib: Worker}}, {(lib, requires_grad): Worker})."""
    me = str(Path(__file__).resolve())
    steps = {o: {lib: Worker(me, lib, "step", o, dev) for lib in libs} for o in ("SGD", "Adam")}
    adds = {(lib, rg): Worker(me, lib, "add", "grad" if rg else "plain", dev)
            for lib in libs for rg in (False, True)}
    return steps, adds


def mlp_table(dev, libs, all_steps, number, repeat):
    print(f"## {dev}: MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, ReLU, cross-entropy: "
          f"ms per training step (best of {repeat} alternating rounds of {number}, each ending "
          "with its library's synchronize; median in brackets)")
    rows = []
    for opt_name in ("SGD", "Adam"):
        steps = all_steps[opt_name]
        res = interleaved_workers(steps, repeat, number, warmup=2 if SMOKE else 10, pause=0.05)
        tt, tm = (v * 1e3 for v in res["tessera"])
        row = {"optimizer": opt_name, "tessera ms": f"{tt:.2f} [{tm:.2f}]"}
        if "torch" in steps:
            tp, pm = (v * 1e3 for v in res["torch"])
            row.update({"torch ms": f"{tp:.2f} [{pm:.2f}]", "tessera/torch": f"{tt / tp:.2f}x",
                        "first-step loss ts / torch":
                            f"{steps['tessera'].info} / {steps['torch'].info}"})
        rows.append(row)
        for w in steps.values():
            w.close()
    table(rows, ["optimizer", "tessera ms", "torch ms", "tessera/torch",
                 "first-step loss ts / torch"])
    if "torch" in libs:
        worst = max(float(r["tessera/torch"][:-1]) for r in rows)
        print(f"step time tessera/torch on {dev}: {worst:.2f}x at worst "
              f"(target <= 1.0x: {'met' if worst <= 1.0 else 'NOT met'})\n")


def tape_table(dev, libs, adds, n2, r2):
    print(f"## {dev}: tape recording: add of two 4-element fp32 tensors, us per op "
          f"(best of {r2} alternating rounds of {n2}, synchronized)")
    res = interleaved_workers(adds, r2, n2, warmup=n2)
    for w in adds.values():
        w.close()
    rows, added = [], {}
    for name in libs:
        p, g = res[(name, False)][0] * 1e6, res[(name, True)][0] * 1e6
        added[name] = g - p
        rows.append({"library": name, "plain us": f"{p:.2f}", "requires_grad us": f"{g:.2f}",
                     "recording adds us": f"{g - p:.2f}"})
    table(rows, ["library", "plain us", "requires_grad us", "recording adds us"])
    if "torch" in added:
        r = added["tessera"] / added["torch"]
        print(f"tape cost tessera/torch on {dev}: {r:.2f}x "
              f"(target <= 2x: {'met' if r <= 2 else 'NOT met'})\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    add_device_arg(ap)
    ap.add_argument("--worker", nargs=4, metavar=("LIB", "WHAT", "ARG", "DEVICE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(*args.worker)
    devices = bench_devices(args.device)
    header("tessera autodiff: MLP training step and tape-recording cost", devices)
    env = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    print(f"# numpy {np.__version__}, {library_line()}; user environment {env}")
    print("# each library runs in a process of its own, with its own defaults\n")
    print(f"# {load_line()} (start)\n")
    have = _torch_devices()
    number, repeat = (20, 5) if args.quick else (20, 21)
    n2, r2 = (200, 15) if args.quick else (500, 61)
    if SMOKE:
        number, repeat, n2, r2 = 2, 2, 5, 2
    for dev in devices:
        libs = ("tessera", "torch") if dev.type in have else ("tessera",)
        if "torch" not in libs:
            print(f"# {dev}: torch column skipped ("
                  + ("torch is not installed" if not have else "this torch has no CUDA") + ")\n")
        steps, adds = start_workers(dev, libs)
        mlp_table(dev, libs, steps, number, repeat)
        tape_table(dev, libs, adds, n2, r2)
    print(f"# {load_line()} (end)")


if __name__ == "__main__":
    main()
