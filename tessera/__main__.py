"""`python -m tessera`: the main job. A short tour on real work: the device, a small
model trained with tessera ops, a NaN caught by check_numerics, a fused chain timed
against NumPy, a training step captured as a graph (IR, replay, timeline), and the
model quantized to int8. It grows with each capability.
"""
from __future__ import annotations

import sys
import time

import numpy as np

import tessera as ts
from tessera import op


def banner():
    dev = ts.default_device()
    print(f"tessera {ts.__version__} on {dev} ({'CuPy' if dev.type == 'cuda' else 'NumPy'} backend)")
    if dev.type == "cuda":
        from tessera.backend.cupy_source import cupy
        props = cupy().cuda.runtime.getDeviceProperties(dev.index)
        print(f"  GPU: {props['name'].decode()}")
    from tessera.fusion import compile_c
    cc = compile_c.compiler_path() if hasattr(compile_c, "compiler_path") else "gcc"
    print(f"  fused CPU kernels: {cc or 'unavailable (op-by-op NumPy)'}")
    print()


def make_data(n, seed):
    """Three interleaved spirals: not linearly separable, so the MLP has to work."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 3, n)
    r = rng.uniform(0.2, 1.0, n)
    theta = 2.5 * np.pi * r + k * 2 * np.pi / 3 + rng.normal(0, 0.15, n)
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return x.astype(np.float32), k.astype(np.int64)


def train():
    print("1. Training a 2-64-64-3 MLP on three spirals (tessera.nn + tessera.optim.Adam)")
    xtr, ytr = make_data(1536, 0)
    xte, yte = make_data(512, 1)
    model = ts.nn.Sequential(ts.nn.Linear(2, 64), ts.nn.ReLU(), ts.nn.Linear(64, 64),
                             ts.nn.ReLU(), ts.nn.Linear(64, 3))
    opt = ts.optim.Adam(model.parameters(), lr=1e-2)
    X, Y = ts.asarray(xtr), ts.asarray(ytr)
    t0 = time.perf_counter()
    for epoch in range(301):
        opt.zero_grad()
        loss = ts.cross_entropy(model(X), Y)
        loss.backward()
        opt.step()
        if epoch % 75 == 0:
            print(f"   epoch {epoch:3d}  loss {float(loss):.4f}")
    dt = time.perf_counter() - t0
    with ts.no_grad():
        pred = ts.argmax(model(ts.asarray(xte)), axis=1).numpy()
    acc = float((pred == yte).mean())
    print(f"   test accuracy {acc:.1%} after 301 full-batch steps ({dt * 1e3 / 301:.2f} ms/step)\n")
    return model, (ts.asarray(xte), ts.asarray(yte))


def numerics():
    print("2. A NaN caught by check_numerics")
    x = ts.asarray([4.0, 1.0, 0.25, -1.0])
    y = ts.sqrt(x) * 2.0
    try:
        op.check_numerics(y, "after sqrt")
    except ts.NumericsError as e:
        print("   NumericsError:", str(e).replace("\n", "\n   "))
    with ts.check_numerics():
        try:
            z = ts.log(ts.asarray(np.linspace(-1, 1, 50000, dtype=np.float32)) + 1.0) * 3.0
            float(z.sum())
        except ts.NumericsError as e:
            print("   in check_numerics mode, inside a fused group:")
            print("   " + str(e).splitlines()[0])
    print()


def timing():
    print("3. An 8-op elementwise chain with a broadcast bias, 2^22 fp32 elements")
    n = 1 << 22
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((n // 1024, 1024)).astype(np.float32)
    bn = rng.standard_normal((1, 1024)).astype(np.float32)
    x, b = ts.asarray(xn), ts.asarray(bn)

    def chain_np(x, b):
        return np.tanh((x * 1.5 + b) * 0.5) * np.exp(-x * x) + x * 0.1 - b

    def chain_ts(x, b):
        return (ts.tanh((x * 1.5 + b) * 0.5) * ts.exp(-x * x) + x * 0.1 - b).realize()

    chain_ts(x, b)  # compile (or load from the disk cache) once
    def best(f, *a):
        ts_ = []
        for _ in range(5):
            t = time.perf_counter()
            f(*a)
            ts_.append(time.perf_counter() - t)
        return min(ts_)
    t_np = best(chain_np, xn, bn)
    t_ts = best(chain_ts, x, b)
    err = np.abs(chain_ts(x, b).numpy() - chain_np(xn, bn)).max()
    print(f"   NumPy op by op {t_np * 1e3:7.2f} ms")
    print(f"   tessera fused  {t_ts * 1e3:7.2f} ms   ({t_np / t_ts:.1f}x NumPy, max |diff| {err:.1e})\n")


def debugging(model, data):
    print("4. One training step captured as a graph: IR, replay, timeline")
    X, Y = data
    opt = ts.optim.SGD(model.parameters(), lr=1e-3)

    def step(x, y):
        opt.zero_grad()
        loss = ts.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    g = ts.graph.capture(step, X, Y)
    graph_ir = g.dump_ir(level="graph", print_=False)
    ops = [ln.split('"')[1] for ln in graph_ir.splitlines() if '"tessera.' in ln]
    print(f"   Graph IR: {len(ops)} ops ({', '.join(sorted(set(ops))[:6])}, ...); "
          f"Schedule and Tile IR: {len(g.kernels())} kernels")
    t_eager = _best(lambda: step(X, Y))
    t_replay = _best(lambda: g(X, Y))
    print(f"   eager step {t_eager * 1e3:.2f} ms, replayed graph {t_replay * 1e3:.2f} ms "
          f"({t_eager / t_replay:.1f}x)")
    tl = g.trace_execution()
    top = sorted((sp for sp in tl.spans if sp.cat != "replay"), key=lambda sp: -sp.dur)[:3]
    print("   timeline of one replay, slowest steps: "
          + ", ".join(f"{sp.name} {sp.dur / 1e3:.0f} us" for sp in top))
    print()


def quantization(model, data):
    print("5. int8 weights: memory and accuracy")
    X, Y = data
    with ts.no_grad():
        before = float((ts.argmax(model(X), axis=1) == Y).astype("fp32").mean())
    nbytes = sum(p.nbytes for p in model.parameters())
    ts.nn.quantize_(model, scheme="int8_per_channel")
    with ts.no_grad():
        after = float((ts.argmax(model(X), axis=1) == Y).astype("fp32").mean())
    qbytes = sum(m.qweight.nbytes + (m.bias.nbytes if m.bias is not None else 0)
                 for m in model.modules() if hasattr(m, "qweight"))
    print(f"   weights {nbytes} -> {qbytes} bytes ({nbytes / qbytes:.1f}x smaller); "
          f"accuracy {before:.1%} -> {after:.1%}\n")


def _best(f, n=5):
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None):
    banner()
    model, data = train()
    numerics()
    timing()
    debugging(model, data)
    quantization(model, data)
    print("Done. Tests: python -m pytest; benchmarks: python benchmarks/<name>.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
