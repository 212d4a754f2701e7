"""Mixed precision and quantization benchmark (issue 7), in one run:

1. quantize + dequantize of a 4096x4096 weight per channel: tessera (fused) vs the
   NumPy expression (and torch.quantize_per_channel when torch is present);
2. int8 GEMM (exact int32, and rescaled), weight-only int8/int4 GEMM vs tessera's
   fp32 and bf16 GEMM and torch._int_mm;
3. an MLP training step under autocast("bf16") vs fp32;
4. the memory of an int8 / int4 quantized model vs fp32.

Everything runs on tessera's default device; the peers run on the same device
(NumPy on the CPU, CuPy on a GPU, torch on torch's device of the same kind, its rows
skipped where this torch has no CUDA). A row that fails prints its error and the
benchmark goes on.

Usage: python benchmarks/precision.py [--gemm-sizes 1024,2048] [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import SMOKE, cupy_module, header, table, tessera_sync, timeit, torch_device  # noqa: E402

import tessera as ts  # noqa: E402
from tessera import op  # noqa: E402
from tessera.precision import int8_matmul, quantized_linear  # noqa: E402


def _sync():
    tessera_sync(ts.default_device())()


def _xp(dev):
    """The array library on tessera's device: NumPy on the CPU, CuPy on a GPU."""
    return (np, "numpy") if dev.type == "cpu" else (cupy_module(dev), "cupy")


FAILURES = []


def _failed(e):
    FAILURES.append(type(e).__name__)
    return f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:70] if str(e) else ''}"


def _try(t, key, fn, **kw):
    """t[key] = timeit(fn) or the error it raised (the other rows still run)."""
    try:
        t[key] = timeit(fn, **kw)
    except Exception as e:  # noqa: BLE001 - report the row, measure the rest
        t[key] = _failed(e)


def bench_quantize(n, rows):
    dev = ts.default_device()
    xp, xname = _xp(dev)
    rng = np.random.default_rng(0)
    wn = rng.standard_normal((n, n)).astype(np.float32)
    w = ts.asarray(wn, device=dev)
    wx = xp.asarray(wn)

    def tessera_qdq():
        q = op.quantize(w, scheme="int8_per_channel")
        return q.dequantize().realize()

    def xp_qdq(m=xp, a=wx):
        s = m.maximum(m.abs(a).max(axis=1, keepdims=True) / 127, 2.0 ** -126)
        q = m.clip(m.rint(a / s), -127, 127).astype(m.int8)
        return q.astype(m.float32) * s

    sync = None if dev.type == "cpu" else xp.cuda.Device().synchronize
    bench = f"quantize+dequantize {n}x{n} per-channel"
    try:
        ok = np.array_equal(tessera_qdq().numpy(), xp_qdq(np, wn))
        t_np = timeit(xp_qdq, repeat=5, sync=sync)
        t_ts = timeit(tessera_qdq, repeat=5, sync=_sync)
    except Exception as e:  # noqa: BLE001
        rows.append({"benchmark": bench, "impl": "tessera (fused)", "ms": _failed(e)})
        return
    rows.append({"benchmark": bench, "impl": xname, "ms": t_np * 1e3, f"speedup vs {xname}": 1.0})
    rows.append({"benchmark": "", "impl": "tessera (fused)" + ("" if ok else " WRONG RESULT"),
                 "ms": t_ts * 1e3, f"speedup vs {xname}": t_np / t_ts})
    torch, tdev, tsync = torch_device(dev)
    if tdev is None:
        rows.append({"benchmark": "", "impl": f"torch: skipped ({tsync})"})
        return
    try:
        import warnings
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        tw = torch.from_numpy(wn).to(tdev)
        zp = torch.zeros(n, dtype=torch.int64, device=tdev)

        def torch_qdq():
            s = tw.abs().amax(dim=1) / 127
            q = torch.quantize_per_channel(tw, s.double(), zp, 0, torch.qint8)
            return q.dequantize()
        t_t = timeit(torch_qdq, repeat=5, sync=tsync)
        rows.append({"benchmark": "", "impl": f"torch.quantize_per_channel ({tdev.type})",
                     "ms": t_t * 1e3, f"speedup vs {xname}": t_np / t_t})
    except Exception as e:  # noqa: BLE001 - e.g. no quantized kernel for this device
        rows.append({"benchmark": "", "impl": f"torch.quantize_per_channel ({tdev.type})",
                     "ms": _failed(e)})


def bench_gemm(n, rows):
    rng = np.random.default_rng(1)
    dev = ts.default_device()
    xf = rng.standard_normal((n, n)).astype(np.float32)
    wf = rng.standard_normal((n, n)).astype(np.float32)
    x32, w32 = ts.asarray(xf, device=dev), ts.asarray(wf, device=dev)
    r = 2 if SMOKE else 3
    t = {}
    _try(t, "fp32 GEMM (tessera)", lambda: ts.matmul(x32, ts.matrix_transpose(w32)).realize(), repeat=r, sync=_sync)
    try:
        xb, wb = x32.astype("bf16"), w32.astype("bf16")
        _try(t, "bf16 GEMM (tessera)", lambda: ts.matmul(xb, ts.matrix_transpose(wb)).realize(),
             repeat=r, sync=_sync)
    except Exception as e:  # noqa: BLE001
        t["bf16 GEMM (tessera)"] = _failed(e)
    try:
        xq, wq = op.quantize(x32, axis=0), op.quantize(w32, axis=0)      # per row / per output channel
        w4 = op.quantize(w32, scheme="int4_per_group", group_size=128 if n >= 128 else n)
        a8, b8 = xq.int_repr(), wq.int_repr()
    except Exception as e:  # noqa: BLE001
        t["quantize (tessera)"] = _failed(e)
        xq = None
    if xq is not None:
        _try(t, "int8 GEMM -> int32 (tessera)", lambda: int8_matmul(a8, ts.matrix_transpose(b8)).realize(),
             repeat=r, sync=_sync)
        _try(t, "int8 x int8 linear, rescaled (tessera)", lambda: quantized_linear(xq, wq).realize(),
             repeat=r, sync=_sync)
        _try(t, "weight-only int8 linear (tessera)", lambda: quantized_linear(x32, wq).realize(),
             repeat=r, sync=_sync)
        _try(t, "weight-only int4 linear (tessera)", lambda: quantized_linear(x32, w4).realize(),
             repeat=r, sync=_sync)
        if dev.type == "cpu" and n <= 1024:  # the host reference is only a peer on the host
            _try(t, "numpy int32 matmul (exact reference)",
                 lambda: a8.numpy().astype(np.int32) @ b8.numpy().T.astype(np.int32), repeat=1, warmup=0)
    torch, tdev, tsync = torch_device(dev)
    if tdev is None:
        t[f"torch: skipped ({tsync})"] = ""
    else:
        if xq is not None:
            try:
                ta = torch.from_numpy(a8.numpy()).to(tdev)
                tb = torch.from_numpy(np.ascontiguousarray(b8.numpy().T)).to(tdev)
                _try(t, f"torch._int_mm ({tdev.type})", lambda: torch._int_mm(ta, tb), repeat=r, sync=tsync)
            except Exception as e:  # noqa: BLE001
                t[f"torch._int_mm ({tdev.type})"] = _failed(e)
        tf, tg = torch.from_numpy(xf).to(tdev), torch.from_numpy(wf).to(tdev)
        _try(t, f"torch fp32 mm ({tdev.type})", lambda: tf @ tg.T, repeat=r, sync=tsync)
    base = t.get("bf16 GEMM (tessera)")
    base = base if isinstance(base, float) else None
    first = True
    for k, v in t.items():
        row = {"benchmark": f"GEMM {n}^3" if first else "", "impl": k}
        if isinstance(v, float):
            row.update({"ms": v * 1e3, "GFLOP/s": 2 * n ** 3 / v / 1e9,
                        "speedup vs tessera bf16": base / v if base else "-"})
        else:
            row["ms"] = v
        rows.append(row)
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
        _try(res, mode, step, repeat=steps, sync=_sync)
    f32, b16 = res["fp32"], res["bf16"]
    ok = isinstance(f32, float) and isinstance(b16, float)
    rows.append({"benchmark": f"MLP train step {batch}x{width}", "impl": "fp32",
                 "ms": f32 * 1e3 if isinstance(f32, float) else f32, "speedup vs fp32": 1.0})
    rows.append({"benchmark": "", "impl": "autocast bf16 + GradScaler",
                 "ms": b16 * 1e3 if isinstance(b16, float) else b16,
                 "speedup vs fp32": f32 / b16 if ok else "-"})


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
    xname = _xp(ts.default_device())[1]
    bench_quantize(64 if SMOKE else 1024 if a.quick else 4096, rows)
    table(rows, ["benchmark", "impl", "ms", f"speedup vs {xname}"])
    rows = []
    for n in ([64] if SMOKE else [int(v) for v in a.gemm_sizes.split(",")]):
        bench_gemm(n, rows)
    table(rows, ["benchmark", "impl", "ms", "GFLOP/s", "speedup vs tessera bf16"])
    rows = []
    if SMOKE:
        bench_mlp(rows, batch=16, width=32, steps=2)
    else:
        bench_mlp(rows, width=256 if a.quick else 1024)
    table(rows, ["benchmark", "impl", "ms", "speedup vs fp32"])
    rows = []
    bench_memory(rows, width=32 if SMOKE else 256 if a.quick else 2048)
    table(rows, ["benchmark", "impl", "MB", "smaller by"])
    if FAILURES:
        print(f"{len(FAILURES)} row(s) failed ({', '.join(sorted(set(FAILURES)))}); see FAILED above")
        sys.exit(1)


if __name__ == "__main__":
    main()
