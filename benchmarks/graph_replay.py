"""Graph replay vs eager (issue 6): the same step run through the Python front end
(dtype rules, Tensor objects, tape, backward sweep) or replayed from a captured graph
(a flat list of fwd / ufunc / fused-kernel calls on buffers).

Programs: a small-tensor MLP training step (32-64-64-10, batch 16: forward,
backward, SGD update in place), the same step with `tessera.optim.Adam`, its
forward pass alone, and a large elementwise
chain (fused into one generated kernel, where the kernel dominates and replay can
only save the Python around it). Replay is checked against eager before timing.

    python benchmarks/graph_replay.py [--quick]
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import numpy as np  # noqa: E402

import tessera as ts  # noqa: E402
from tessera.graph import capture  # noqa: E402
from _common import SMOKE, header, table, tessera_sync, timeit  # noqa: E402


def mlp(rng, sizes=((32, 64), (64, 64), (64, 10))):
    ps = []
    for i, o in sizes:
        ps.append(ts.asarray((rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32),
                             requires_grad=True))
        ps.append(ts.asarray(np.zeros(o, np.float32), requires_grad=True))
    return ps


def forward(params, x):
    w1, b1, w2, b2, w3, b3 = params
    h = ts.relu(x @ w1 + b1)
    h = ts.tanh(h @ w2 + b2)
    return h @ w3 + b3


def train_step(params, x, y, lr=0.05):
    for p in params:
        p.grad = None
    loss = ((forward(params, x) - y) ** 2).mean()
    loss.backward()
    with ts.no_grad():
        for p in params:
            p -= lr * p.grad
    return loss


def chain(x, b):
    y = ts.tanh(x * 1.7 + b) * 0.5
    return (y + ts.exp(-x * x)) * x - b


def bench(quick):
    rng = np.random.default_rng(0)
    repeat, number = (2, 2) if SMOKE else (5, 20) if quick else (9, 100)
    sync = tessera_sync(ts.default_device())  # each timed region ends with the device idle
    rows = []
    # -- training step: eager and replay on separate copies of the parameters
    pe = mlp(rng)
    pr = [ts.asarray(p.numpy().copy(), requires_grad=True) for p in pe]
    x = ts.asarray(rng.standard_normal((16, 32)).astype(np.float32))
    y = ts.asarray(rng.standard_normal((16, 10)).astype(np.float32))
    g = capture(lambda x, y: train_step(pr, x, y), x, y)
    train_step(pe, x, y)
    for _ in range(3):  # replay == eager, step by step
        le, lr_ = train_step(pe, x, y), g(x, y)
        assert float(le) == float(lr_), (float(le), float(lr_))
    te = timeit(lambda: train_step(pe, x, y), repeat, number, sync=sync)
    tr = timeit(lambda: g(x, y), repeat, number, sync=sync)
    rows.append({"program": "MLP train step (32-64-64-10, batch 16)", "ops": len(g.ops),
                 "steps": len(g.steps), "eager us": te * 1e6, "replay us": tr * 1e6,
                 "speedup": te / tr})
    # -- training step with Adam (state updated in place, step count in a tensor)
    pa = mlp(np.random.default_rng(1))
    pb = [ts.asarray(p.numpy().copy(), requires_grad=True) for p in pa]
    oa, ob = ts.optim.Adam(pa, lr=1e-3), ts.optim.Adam(pb, lr=1e-3)

    def adam_step(params, opt, x, y):
        opt.zero_grad()
        loss = ((forward(params, x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss
    ga = capture(lambda x, y: adam_step(pb, ob, x, y), x, y)
    adam_step(pa, oa, x, y)
    for _ in range(3):
        le, lr_ = adam_step(pa, oa, x, y), ga(x, y)
        assert float(le) == float(lr_), (float(le), float(lr_))
    te = timeit(lambda: adam_step(pa, oa, x, y), repeat, number, sync=sync)
    tr = timeit(lambda: ga(x, y), repeat, number, sync=sync)
    rows.append({"program": "MLP train step + Adam (same MLP)", "ops": len(ga.ops),
                 "steps": len(ga.steps), "eager us": te * 1e6, "replay us": tr * 1e6,
                 "speedup": te / tr})
    # -- forward only (no grad)
    with ts.no_grad():
        gf = capture(lambda x: forward(pe, x), x)
        np.testing.assert_array_equal(gf(x).numpy(), forward(pe, x).numpy())
        te = timeit(lambda: forward(pe, x), repeat, number, sync=sync)
        tr = timeit(lambda: gf(x), repeat, number, sync=sync)
    rows.append({"program": "MLP forward, no grad", "ops": len(gf.ops), "steps": len(gf.steps),
                 "eager us": te * 1e6, "replay us": tr * 1e6, "speedup": te / tr})
    # -- large fused chain: one generated kernel either way
    n = 32 if SMOKE else 512 if quick else 1024
    xb = ts.asarray(rng.standard_normal((n, n)).astype(np.float32))
    bb = ts.asarray(rng.standard_normal((n,)).astype(np.float32))
    gc = capture(chain, xb, bb)
    np.testing.assert_array_equal(gc(xb, bb).numpy(), chain(xb, bb).numpy())
    te = timeit(lambda: chain(xb, bb).realize(), repeat, max(1, number // 10), sync=sync)
    tr = timeit(lambda: gc(xb, bb), repeat, max(1, number // 10), sync=sync)
    rows.append({"program": f"fused chain {n}x{n} fp32", "ops": len(gc.ops),
                 "steps": len(gc.steps), "eager us": te * 1e6, "replay us": tr * 1e6,
                 "speedup": te / tr})
    table(rows, ["program", "ops", "steps", "eager us", "replay us", "speedup"])
    return rows


if __name__ == "__main__":
    header("graph replay vs eager")
    bench("--quick" in sys.argv)
