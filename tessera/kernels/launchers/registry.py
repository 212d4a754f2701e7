"""The kernels tessera can launch: dtype tables and every name expression.

Owns the mapping from tessera dtype names to the C++ storage types of compat.cuh,
the name-expression builders the launchers use (so a launcher can only ask for an
instantiation listed here), and `INSTANTIATIONS` / `HIP_INSTANTIATIONS`:
{kernel file: [name expressions]} for CUDA and for HIP, iterated by the compile
checks in tests/kernels.

    >>> reduce_name("rows", "sum", "fp16")
    'reduce_rows<SumOp<f32>,f16,f16>'
"""
from __future__ import annotations

from ... import dtypes as _dt

# Views of the one dtype table (tessera/dtypes.py) for the dtypes kernels handle:
# tessera dtype name -> C++ storage type in compat.cuh, and -> bytes per element.
# Which CuPy dtype stores each on a device is the CUDA backend's (`_runtime.storage`).
CTYPE = {d.name: d.ctype for d in _dt.ALL_DTYPES if d.ctype is not None}
ITEMSIZE = {d.name: d.itemsize for d in _dt.ALL_DTYPES if d.ctype is not None}
ALL_DTYPES = tuple(CTYPE)
FLOATS = ("fp64", "fp32", "fp16", "bf16")
INTS = ("int8", "int16", "int32", "int64", "uint8", "bool")
BYTES_TYPE = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}  # movement kernels copy bytes


def acc_ctype(dtype: str) -> str:
    """Accumulation type: f32 for fp16/bf16/fp32, f64 for fp64, i64 for integers/bool."""
    return "f64" if dtype == "fp64" else "f32" if dtype in FLOATS else "i64"


def acc_dtype(dtype: str) -> str:
    return {"f64": "fp64", "f32": "fp32", "i64": "int64"}[acc_ctype(dtype)]


# ---- reductions ---------------------------------------------------------------------
REDUCE_OPS = {  # op -> (C++ state template, dtypes it accepts)
    "sum": ("SumOp", FLOATS + INTS), "prod": ("ProdOp", FLOATS + INTS),
    "max": ("MaxOp", FLOATS + INTS[:-1]), "min": ("MinOp", FLOATS + INTS[:-1]),
    "argmax": ("ArgMaxOp", FLOATS + INTS[:-1]), "argmin": ("ArgMinOp", FLOATS + INTS[:-1]),
    "mean": ("MeanOp", FLOATS), "var": ("VarOp", FLOATS), "std": ("StdOp", FLOATS),
    "logsumexp": ("LogSumExpOp", FLOATS), "all": ("AllOp", FLOATS + INTS),
    "any": ("AnyOp", FLOATS + INTS),
}


def reduce_out_dtype(op: str, dtype: str) -> str:
    """Result dtype, as numpy: integer sums/products widen to int64."""
    if op in ("argmax", "argmin"):
        return "int64"
    if op in ("all", "any"):
        return "bool"
    if op in ("sum", "prod") and dtype in INTS:
        return "int64"
    return dtype


def reduce_name(layout: str, op: str, dtype: str, out_dtype: str | None = None) -> str:
    state, ok = REDUCE_OPS[op]
    if dtype not in ok:
        raise ValueError(f"[reduce] op {op!r} does not accept dtype {dtype}; accepted: {', '.join(ok)}")
    out = CTYPE[out_dtype or reduce_out_dtype(op, dtype)]
    return f"reduce_{layout}<{state}<{acc_ctype(dtype)}>,{CTYPE[dtype]},{out}>"


# ---- matmul -------------------------------------------------------------------------
ACTIVATIONS = {None: 0, "none": 0, "relu": 1, "gelu": 2, "silu": 3}
SIMT_TILES = {"fp32": [(128, 128, 8), (64, 64, 8)], "fp64": [(64, 64, 8)],
              "fp16": [(128, 128, 8), (64, 64, 8)], "bf16": [(128, 128, 8), (64, 64, 8)]}
WMMA_TILES = {"fp16": [(128, 128, 32), (64, 64, 32)], "bf16": [(128, 128, 32), (64, 64, 32)]}
MATMUL_DTYPES = ("fp64", "fp32", "fp16", "bf16")


def simt_micro(bm: int, bn: int) -> tuple:
    """A 16x16 thread grid: each thread owns a (BM/16) x (BN/16) register micro-tile."""
    return bm // 16, bn // 16


def wmma_warps(bm: int, bn: int) -> tuple:
    """Per-warp sub-tile (WM, WN): 2 warps along M, 4 (BN >= 128) or 2 along N."""
    return bm // 2, (bn // 4 if bn >= 128 else bn // 2)


def uses_wmma(dtype: str, platform: str = "cuda") -> bool:
    return platform == "cuda" and dtype in WMMA_TILES


def matmul_name(dtype, tile, trans_a=False, trans_b=False, activation=None, platform="cuda") -> str:
    bm, bn, bk = tile
    b = lambda v: "true" if v else "false"  # noqa: E731
    act = ACTIVATIONS[activation]
    if uses_wmma(dtype, platform):
        wm, wn = wmma_warps(bm, bn)
        return f"matmul_wmma<{CTYPE[dtype]},{bm},{bn},{bk},{wm},{wn},{b(trans_a)},{b(trans_b)},{act}>"
    tm, tn = simt_micro(bm, bn)
    return f"matmul_simt<{CTYPE[dtype]},{bm},{bn},{bk},{tm},{tn},{b(trans_a)},{b(trans_b)},{act}>"


def matmul_tiles(dtype: str, platform: str = "cuda") -> list:
    return (WMMA_TILES if uses_wmma(dtype, platform) else SIMT_TILES)[dtype]


# ---- the rest -----------------------------------------------------------------------
SCAN_DTYPES = ("fp64", "fp32", "fp16", "bf16", "int8", "int16", "int32", "int64", "uint8", "bool")
SCATTER_DTYPES = ("fp64", "fp32", "fp16", "bf16", "int32", "int64")
SAT_CAST_SOURCES = ALL_DTYPES


def scan_out_dtype(dtype: str) -> str:
    return dtype if dtype in FLOATS else "int64"


def cast_name(src: str, dst: str, saturate: bool = False) -> str:
    sat = saturate and dst.startswith("fp8") and src in SAT_CAST_SOURCES
    return f"cast<{CTYPE[src]},{CTYPE[dst]},{'true' if sat else 'false'}>"


# ---- quantized matmul (qgemm.cu) -------------------------------------------------------
QGEMM_OUT = ("fp32", "fp16", "bf16", "int32")   # int32: the raw accumulator
QGEMM_WO_DTYPES = ("fp32", "fp16", "bf16")
QGEMM_ACTS = ("none", "relu", "gelu", "silu")


def qgemm_name(kernel: str, out_dtype: str, activation=None) -> str:
    """qgemm_mma / qgemm_dp4a name expression (int8 x int8 -> out_dtype)."""
    return f"{kernel}<{CTYPE[out_dtype]},{ACTIVATIONS[activation]}>"


def qgemm_wo_name(dtype: str, bits: int, activation=None) -> str:
    return f"qgemm_wo<{CTYPE[dtype]},{bits},{ACTIVATIONS[activation]}>"


def qgemm_instantiations(platform: str) -> list:
    kernels = ("qgemm_mma", "qgemm_dp4a") if platform == "cuda" else ("qgemm_dp4a",)
    out = [qgemm_name(k, o, a) for k in kernels for o in QGEMM_OUT for a in QGEMM_ACTS
           if o != "int32" or a == "none"]
    # weight-only: bias in the kernel, the activation in the fused elementwise epilogue
    return out + [qgemm_wo_name(d, b) for d in QGEMM_WO_DTYPES for b in (8, 4)]


# ---- grouped matmul (grouped_matmul.cu): the expert step of a mixture of experts ----
GROUPED_DTYPES = FLOATS
GROUPED_TILES = {"fp64": (64, 64, 8), "fp32": (64, 64, 16), "fp16": (64, 64, 16), "bf16": (64, 64, 16)}


def grouped_matmul_name(dtype: str, trans_w: bool = False) -> str:
    bm, bn, bk = GROUPED_TILES[dtype]
    tm, tn = simt_micro(bm, bn)
    return f"grouped_matmul<{CTYPE[dtype]},{bm},{bn},{bk},{tm},{tn},{'true' if trans_w else 'false'}>"


def grouped_wgrad_name(dtype: str) -> str:
    bm, bn, bk = GROUPED_TILES[dtype]
    tm, tn = simt_micro(bm, bn)
    return f"grouped_matmul_wgrad<{CTYPE[dtype]},{bm},{bn},{bk},{tm},{tn}>"


def _build(platform: str) -> dict:
    inst: dict = {}
    inst["reduce.cu"] = [reduce_name(lay, op, dt) for op, (_, dts) in REDUCE_OPS.items()
                         for dt in dts for lay in ("rows", "cols")]
    # layer_norm's dgamma/dbeta: partial sums (accumulation type) -> parameter dtype
    inst["reduce.cu"] += [reduce_name("cols", "sum", acc_dtype(dt), dt) for dt in ("fp16", "bf16")]
    inst["matmul.cu"] = [matmul_name(dt, tile, ta, tb, act, platform)
                         for dt in MATMUL_DTYPES for tile in matmul_tiles(dt, platform)
                         for ta in (False, True) for tb in (False, True)
                         for act in ("none", "relu", "gelu", "silu")]
    inst["softmax.cu"] = [f"softmax_{d}<{CTYPE[dt]},{lg}>" for d in ("fwd", "bwd")
                          for dt in FLOATS for lg in ("false", "true")]
    inst["layernorm.cu"] = [f"{k}<{CTYPE[dt]}>" for k in ("layer_norm_fwd", "layer_norm_bwd_dx",
                                                           "layer_norm_bwd_params") for dt in FLOATS]
    inst["cross_entropy.cu"] = [f"{k}<{CTYPE[dt]}>" for k in ("ce_fwd", "ce_bwd") for dt in FLOATS]
    inst["transpose.cu"] = ([f"transpose_tiled<{t},32,8>" for t in BYTES_TYPE.values()]
                            + [f"strided_copy<{t}>" for t in BYTES_TYPE.values()])
    inst["gather.cu"] = ([f"{k}<{t}>" for k in ("index_select", "gather_flat") for t in BYTES_TYPE.values()]
                         + [f"{k}<{CTYPE[dt]}>" for k in ("scatter_add_axis", "scatter_add_flat")
                            for dt in SCATTER_DTYPES])
    inst["scan.cu"] = [f"scan_rows<{CTYPE[dt]},{CTYPE[scan_out_dtype(dt)]}>" for dt in SCAN_DTYPES]
    inst["scan.cu"] += [f"scan_rows<{a},{a}>" for a in ("f32", "f64", "i64") if f"scan_rows<{a},{a}>" not in inst["scan.cu"]]
    inst["cast.cu"] = ([cast_name(s, d) for s in ALL_DTYPES for d in ALL_DTYPES]
                       + [cast_name(s, d, True) for s in SAT_CAST_SOURCES for d in ("fp8_e4m3", "fp8_e5m2")])
    inst["qgemm.cu"] = qgemm_instantiations(platform)
    inst["grouped_matmul.cu"] = ([grouped_matmul_name(dt, tw) for dt in GROUPED_DTYPES for tw in (False, True)]
                                 + [grouped_wgrad_name(dt) for dt in GROUPED_DTYPES])
    return {f: list(dict.fromkeys(v)) for f, v in inst.items()}


INSTANTIATIONS = _build("cuda")
HIP_INSTANTIATIONS = _build("hip")
