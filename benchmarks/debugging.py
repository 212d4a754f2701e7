"""Cost of the debugging tools on a small-MLP training step (forward, backward,
Adam update): the plain step, the step under `check_numerics()` mode, and the
step under `profiler.profile()` (recording and building the Timeline). Targets
on a GPU: numerics <= 1.3x, profiling <= 1.1x. Then `benchmarks/graph_replay.py`:
graph replay of small-tensor training steps vs eager (target >= 2x).

    python benchmarks/debugging.py            # prints the tables
    python benchmarks/debugging.py --quick    # fewer repeats
    python benchmarks/debugging.py --no-graph-replay   # without the graph-replay table
"""
import os
import runpy
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import tessera as ts  # noqa: E402
from _common import SMOKE, header, table, tessera_sync  # noqa: E402
from tessera.numerics import check_numerics  # noqa: E402
from tessera.profiler import profile  # noqa: E402

# (batch, in, hidden, out): the first runs every elementwise op eagerly on the CPU;
# in the second the hidden activations (256 x 512) go through the fusion buffer.
CONFIGS = {"small (eager)": (32, 64, 128, 10), "medium (fused)": (256, 256, 512, 10)}
if SMOKE:
    CONFIGS = {"small (eager)": (4, 8, 16, 2), "medium (fused)": (16, 16, 32, 2)}


def make_step(batch, d_in, hidden, d_out, device):
    rng = np.random.default_rng(0)

    def param(*shape):
        a = (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
        return ts.asarray(a, device=device, requires_grad=True)
    w1, b1, w2, b2 = param(d_in, hidden), param(1, hidden), param(hidden, d_out), param(1, d_out)
    x = ts.asarray(rng.standard_normal((batch, d_in)).astype(np.float32), device=device)
    y = ts.asarray(rng.standard_normal((batch, d_out)).astype(np.float32), device=device)
    # Adam: its in-place state updates are checked by check_numerics too
    opt = ts.optim.Adam([w1, b1, w2, b2], lr=1e-3)

    def step():
        opt.zero_grad()
        h = ts.maximum(x @ w1 + b1, 0.0)
        err = h @ w2 + b2 - y
        loss = ts.mean(err * err)
        loss.backward()
        opt.step()
        return float(loss)
    return step


def sync_for(device):
    return tessera_sync(device) if device.type == "cuda" else None


def interleaved(fns, repeat, number, sync):
    """Best-of-`repeat` seconds per call of each fn, the fns taking turns within
    each repeat, so that load from other processes hits all of them alike."""
    for f in fns:
        for _ in range(3):
            f()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, f in enumerate(fns):
            t = time.perf_counter()
            for _ in range(number):
                f()
            if sync:
                sync()
            best[i] = min(best[i], (time.perf_counter() - t) / number)
    return best


def bench(quick):
    dev = ts.default_device()
    sync = sync_for(dev)
    repeat, number = (2, 1) if SMOKE else (5, 5) if quick else (15, 20)
    rows = []
    for label, cfg in CONFIGS.items():
        step = make_step(*cfg, dev)

        def numerics():
            with check_numerics():
                step()

        def profiled():
            with profile() as tl:
                step()
            return tl
        base, t_num, t_prof = interleaved([step, numerics, profiled], repeat, number, sync)
        spans = len(profiled())
        rows.append({"config": label, "plain ms": base * 1e3, "numerics ms": t_num * 1e3,
                     "numerics x": t_num / base, "profile ms": t_prof * 1e3,
                     "profile x": t_prof / base, "spans/step": spans})
    table(rows, ["config", "plain ms", "numerics ms", "numerics x", "profile ms", "profile x",
                 "spans/step"])
    print(f"best of {repeat} x {number} steps, variants interleaved; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores during the run")
    print("targets (GPU): numerics x <= 1.3, profile x <= 1.1")
    print()
    step = make_step(*CONFIGS["medium (fused)"], dev)
    for _ in range(3):
        step()
    with profile() as tl:
        for _ in range(5):
            step()
    print("# profile of 5 medium steps (self time per op/kernel)")
    tl.summary()
    print()


def graph_replay():
    path = os.path.join(HERE, "graph_replay.py")
    if not os.path.exists(path):
        print("# graph replay vs eager: benchmarks/graph_replay.py not present; skipped")
        return
    print("# graph replay vs eager (benchmarks/graph_replay.py)")
    argv = sys.argv
    try:
        sys.argv = [path] + (["--quick"] if "--quick" in argv else [])
        runpy.run_path(path, run_name="__main__")
    except SystemExit:
        pass
    except Exception as e:  # another engineer's script: report, do not hide our numbers
        print(f"graph_replay.py failed: {type(e).__name__}: {e}")
    finally:
        sys.argv = argv


if __name__ == "__main__":
    header("debugging tools: check_numerics and profiler overhead on a small-MLP step")
    bench("--quick" in sys.argv)
    if "--no-graph-replay" not in sys.argv:
        graph_replay()
