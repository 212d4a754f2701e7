"""Mixed precision and quantization benchmark (issue 7), in one run:

1. quantize + dequantize of a 4096x4096 weight per channel: tessera (fused) vs the
   NumPy expression (and torch.quantize_per_channel when torch is present);
2. int8 GEMM (exact int32, and rescaled), weight-only int8/int4 GEMM vs tessera's
   fp32 and bf16 GEMM and torch._int_mm;
3. an MLP training step under autocast("bf16") vs fp32;
4. the memory of an int8 / int4 quantized model vs fp32.

Usage: python benchmarks/precision.py [--gemm-sizes 1024,2048] [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import header, table, timeit  # noqa: E402

import tessera as ts  # noqa: E402
from tessera import op  # noqa: E402
from tessera.precision import int8_matmul, quantized_linear  # noqa: E402


def _sync():
    ts.default_device().backend.synchronize()


def bench_quantize(n, rows):
    rng = np.random.default_rng(0)
    wn = rng.standard_normal((n, n)).astype(np.float32)
    w = ts.asarray(wn, device=ts.default_device())

    def tessera_qdq():
        q = op.quantize(w, scheme="int8_per_channel")
        return q.dequantize().realize()

    def numpy_qdq():
        s = np.maximum(np.abs(wn).max(axis=1, keepdims=True) / 127, 2.0 ** -126)
        q = np.clip(np.rint(wn / s), -127, 127).astype(np.int8)
        return q.astype(np.float32) * s

    assert np.array_equal(tessera_qdq().numpy(), numpy_qdq())
    t_np = timeit(numpy_qdq, repeat=5)
    t_ts = timeit(tessera_qdq, repeat=5, sync=_sync)
    rows.append({"benchmark": f"quantize+dequantize {n}x{n} per-channel", "impl": "numpy", "ms": t_np * 1e3,
                 "speedup vs numpy": 1.0})
    rows.append({"benchmark": "", "impl": "tessera (fused)", "ms": t_ts * 1e3, "speedup vs numpy": t_np / t_ts})
    try:
        import torch
        import warnings
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        tw = torch.from_numpy(wn)

        def torch_qdq():
            s = tw.abs().amax(dim=1) / 127
            q = torch.quantize_per_channel(tw, s.double(), torch.zeros(n, dtype=torch.int64), 0, torch.qint8)
            return q.dequantize()
        t_t = timeit(torch_qdq, repeat=5)
        rows.append({"benchmark": "", "impl": "torch.quantize_per_channel", "ms": t_t * 1e3,
                     "speedup vs numpy": t_np / t_t})
    except Exception as e:  # torch is optional
        rows.append({"benchmark": "", "impl": f"torch: unavailable ({type(e).__name__})"})


def bench_gemm(n, rows):
    rng = np.random.default_rng(1)
    dev = ts.default_device()
    xf = rng.standard_normal((n, n)).astype(np.float32)
    wf = rng.standard_normal((n, n)).astype(np.float32)
    x32, w32 = ts.asarray(xf, device=dev), ts.asarray(wf, device=dev)
    xb, wb = x32.astype("bf16"), w32.astype("bf16")
    xq, wq = op.quantize(x32, axis=0), op.quantize(w32, axis=0)      # per row / per output channel
    w4 = op.quantize(w32, scheme="int4_per_group", group_size=128)
    a8, b8 = xq.int_repr(), wq.int_repr()
    r = repeat = 3
    t = {}
    t["fp32 GEMM (tessera)"] = timeit(lambda: ts.matmul(x32, ts.matrix_transpose(w32)).realize(), repeat=r, sync=_sync)
    t["bf16 GEMM (tessera)"] = timeit(lambda: ts.matmul(xb, ts.matrix_transpose(wb)).realize(), repeat=r, sync=_sync)
    t["int8 GEMM -> int32 (tessera)"] = timeit(lambda: int8_matmul(a8, ts.matrix_transpose(b8)).realize(),
                                               repeat=r, sync=_sync)
    t["int8 x int8 linear, rescaled (tessera)"] = timeit(lambda: quantized_linear(xq, wq).realize(),
                                                          repeat=r, sync=_sync)
    t["weight-only int8 linear (tessera)"] = timeit(lambda: quantized_linear(x32, wq).realize(), repeat=r, sync=_sync)
    t["weight-only int4 linear (tessera)"] = timeit(lambda: quantized_linear(x32, w4).realize(), repeat=r, sync=_sync)
    t["numpy int32 matmul (exact reference)"] = timeit(
        lambda: a8.numpy().astype(np.int32) @ b8.numpy().T.astype(np.int32), repeat=1, warmup=0) \
        if n <= 1024 else None
    try:
        import torch
        ta, tb = torch.from_numpy(a8.numpy()), torch.from_numpy(np.ascontiguousarray(b8.numpy().T))
        t["torch._int_mm"] = timeit(lambda: torch._int_mm(ta, tb), repeat=r)
        tf, tg = torch.from_numpy(xf), torch.from_numpy(wf)
        t["torch fp32 mm"] = timeit(lambda: tf @ tg.T, repeat=r)
    except Exception as e:
        rows.append({"benchmark": f"torch: unavailable ({type(e).__name__}: {e})"[:80]})
    base = t["bf16 GEMM (tessera)"]
    first = True
    for k, v in t.items():
        if v is None:
            continue
        rows.append({"benchmark": f"GEMM {n}^3" if first else "", "impl": k, "ms": v * 1e3,
                     "GFLOP/s": 2 * n ** 3 / v / 1e9, "speedup vs tessera bf16": base / v})
        first = False


def bench_mlp(rows, batch=256, width=1024, steps=3):
    from tessera.random import Generator
    dev = ts.default_device()

    def make():
        m = ts.nn.Sequential(ts.nn.Linear(width, width, generator=Generator(0)), ts.nn.GELU(),
                             ts.nn.Linear(width, width, generator=Generator(1)), ts.nn.GELU(),
                             ts.nn.Linear(width, 10, generator=Generator(2)))
        return m.to(dev), ts.optim.AdamW(m.parameters(), lr=1e-3)
    x = ts.asarray(np.random.default_rng(2).standard_normal((batch, width)).astype(np.float32), device=dev)
    y = ts.asarray(np.random.default_rng(3).integers(0, 10, batch), device=dev)
    res = {}
    for mode in ("fp32", "bf16"):
        m, opt = make()
        scaler = ts.amp.GradScaler(enabled=mode != "fp32")

        def step():
            opt.zero_grad()
            with ts.autocast("bf16", enabled=mode != "fp32"):
                loss = ts.cross_entropy(m(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            return loss
        res[mode] = timeit(step, repeat=steps, sync=_sync)
    rows.append({"benchmark": f"MLP train step {batch}x{width}", "impl": "fp32", "ms": res["fp32"] * 1e3,
                 "speedup vs fp32": 1.0})
    rows.append({"benchmark": "", "impl": "autocast bf16 + GradScaler", "ms": res["bf16"] * 1e3,
                 "speedup vs fp32": res["fp32"] / res["bf16"]})


def bench_memory(rows, width=2048):
    from tessera.random import Generator

    def make():
        return ts.nn.Sequential(ts.nn.Linear(width, 4 * width, generator=Generator(0)), ts.nn.GELU(),
                                ts.nn.Linear(4 * width, width, generator=Generator(1)))

    def nbytes(m):
        total = 0
        for mod in m.modules():
            if isinstance(mod, ts.nn.QuantizedLinear):
                total += mod.qweight.nbytes + (mod.bias.nbytes if mod.bias is not None else 0)
            elif isinstance(mod, ts.nn.Linear):
                total += sum(p.nbytes for p in mod.parameters())
        return total
    base = nbytes(make())
    rows.append({"benchmark": f"MLP {width}->{4 * width}->{width} memory", "impl": "fp32", "MB": base / 2 ** 20,
                 "smaller by": 1.0})
    for scheme in ("int8_per_channel", "int4_per_group"):
        b = nbytes(ts.nn.quantize_(make(), scheme=scheme))
        rows.append({"benchmark": "", "impl": scheme, "MB": b / 2 ** 20, "smaller by": base / b})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gemm-sizes", default="1024,2048")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    header("precision: quantize, int8 GEMM, autocast, quantized model memory")
    # shared CI machines: the load says how much the timings can be trusted
    print(f"# load average at start: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores)\n")
    rows = []
    bench_quantize(1024 if a.quick else 4096, rows)
    table(rows, ["benchmark", "impl", "ms", "speedup vs numpy"])
    rows = []
    for n in [int(v) for v in a.gemm_sizes.split(",")]:
        bench_gemm(n, rows)
    table(rows, ["benchmark", "impl", "ms", "GFLOP/s", "speedup vs tessera bf16"])
    rows = []
    bench_mlp(rows, width=256 if a.quick else 1024)
    table(rows, ["benchmark", "impl", "ms", "speedup vs fp32"])
    rows = []
    bench_memory(rows, width=256 if a.quick else 2048)
    table(rows, ["benchmark", "impl", "MB", "smaller by"])


if __name__ == "__main__":
    main()
