"""Launch geometry and tile-hint validation, in pure Python (no GPU needed).

Owns: grid/block/shared-memory choices for every kernel family and the limits a
tile hint must respect (threads per block, the shared memory a block may have,
the register budget of the accumulators, the grid's y/z extents). Everything here
is plain integer arithmetic so tests check it on any machine.

    >>> rows_geometry(1000, 64)
    ((125, 1, 1), (32, 8, 1))
    >>> matmul_config("fp32", tile=(64, 64, 8)).threads
    256
"""
from __future__ import annotations

from dataclasses import dataclass

from .registry import ITEMSIZE, acc_ctype, matmul_tiles, simt_micro, uses_wmma, wmma_warps

MAX_THREADS = 1024
MAX_STATIC_SMEM = 48 * 1024      # bytes of static __shared__ per block (CUDA and HIP), and the
                                 # dynamic bytes a CUDA launch gets without the opt-in attribute
# Shared memory per block of the largest GPU of each platform that tessera targets, and
# whose: a tile is checked against it when no device is named (a hint, the autotuner's
# space); a launch checks the device's own limit (smem.py: 99 KB on sm_86, 163 KB on sm_80).
LARGEST_SMEM = {"cuda": (227 * 1024, "an sm_90 GPU's, with the opt-in"),
                "hip": (64 * 1024, "an MI200/MI300 workgroup's LDS")}
MAX_GRID_YZ = 65535              # grid.y / grid.z limit; x is 2^31 - 1
MAX_GRID_X = 2**31 - 1
ACC_REG_BUDGET = 160             # 32-bit registers for accumulators + fragments per thread
PREFETCH_REG_BUDGET = 128        # SIMT: the same estimate with the next tiles' shares (matmul.cu)
WARP_ROW_MAX_COLS = 2048         # rows up to this long get one warp each, longer a block
ROW_BLOCK = 256                  # threads per row for long rows
ELEMENTWISE_BLOCK = 256
ELEMENTWISE_MAX_BLOCKS = 65536   # grid-stride loops cover the rest


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def rows_geometry(rows: int, cols: int, warp_size: int = 32):
    """(grid, block) for the row-group kernels (reduce_rows, softmax, layer_norm, ce):
    one warp per row for short rows (several rows per block), one block per row otherwise."""
    if rows <= 0:
        raise ValueError("[launch] rows_geometry needs rows >= 1 (skip the launch for empty input)")
    if cols <= WARP_ROW_MAX_COLS:
        rpb = max(1, 256 // warp_size)
        grid, block = (cdiv(rows, rpb), 1, 1), (warp_size, rpb, 1)
    else:
        grid, block = (rows, 1, 1), (ROW_BLOCK, 1, 1)
    if grid[0] > MAX_GRID_X:
        raise ValueError(f"[launch] {rows} rows exceed the grid x limit {MAX_GRID_X}")
    return grid, block


COLS_TX, COLS_TY = 32, 8  # must match reduce.cu / layernorm.cu


def cols_geometry(outer: int, R: int, inner: int):
    """(grid, block) for reduce_cols over x (outer, R, inner): threads span inner;
    grid.y strides over outer (capped, the kernel loops)."""
    if outer <= 0 or inner <= 0:
        raise ValueError("[launch] cols_geometry needs outer, inner >= 1")
    return (cdiv(inner, COLS_TX), min(outer, MAX_GRID_YZ), 1), (COLS_TX, COLS_TY, 1)


def elementwise_geometry(n: int, block: int = ELEMENTWISE_BLOCK, max_blocks: int = ELEMENTWISE_MAX_BLOCKS):
    """(grid, block) for grid-stride loops over n elements."""
    if n <= 0:
        raise ValueError("[launch] elementwise_geometry needs n >= 1")
    return (min(cdiv(n, block), max_blocks), 1, 1), (block, 1, 1)


TRANSPOSE_TILE, TRANSPOSE_ROWS = 32, 8


def transpose_geometry(batch: int, R: int, C: int):
    return ((cdiv(C, TRANSPOSE_TILE), cdiv(R, TRANSPOSE_TILE), min(batch, MAX_GRID_YZ)),
            (TRANSPOSE_TILE, TRANSPOSE_ROWS, 1))


SCAN_CHUNK = 256 * 4  # SCAN_BLOCK * SCAN_ITEMS in scan.cu


def scan_geometry(rows: int, n: int, sm_count: int = 132):
    """(segments, seg_len, grid, block). Split rows into segments only when rows alone
    would leave most SMs idle and each segment still spans several chunks."""
    segs = 1
    if rows < 2 * sm_count and n > 4 * SCAN_CHUNK:
        segs = max(1, min(cdiv(2 * sm_count, rows), n // (4 * SCAN_CHUNK)))
    seg_len = cdiv(cdiv(n, segs), SCAN_CHUNK) * SCAN_CHUNK
    segs = cdiv(n, seg_len) if n else 1
    return segs, seg_len, (segs, min(rows, MAX_GRID_YZ), 1), (256, 1, 1)


LN_PARAM_ROWS_PER_CHUNK = 256


def layer_norm_params_geometry(rows: int, cols: int):
    """(chunks, rows_per_chunk, grid, block) for layer_norm_bwd_params."""
    rpc = LN_PARAM_ROWS_PER_CHUNK
    chunks = cdiv(rows, rpc)
    if chunks > MAX_GRID_YZ:
        rpc = cdiv(rows, MAX_GRID_YZ)
        chunks = cdiv(rows, rpc)
    return chunks, rpc, (cdiv(cols, COLS_TX), chunks, 1), (COLS_TX, COLS_TY, 1)


@dataclass(frozen=True)
class MatmulConfig:
    kernel: str      # "simt" | "wmma"
    tile: tuple      # (BM, BN, BK)
    threads: int
    smem_bytes: int      # dynamic shared memory per block
    acc_registers: int
    prefetch: bool = True  # SIMT: next tiles prefetched into registers (else copied straight in)


def _check_tile(dtype: str, tile, platform: str, smem_limit: int | None = None) -> MatmulConfig:
    """The kernel, threads and shared bytes of a (BM, BN, BK) tile, or ValueError naming
    the limit it breaks. `smem_limit`: the device's bytes per block with the opt-in
    (smem.smem_limit); None checks against the largest GPU of `platform` (LARGEST_SMEM)."""
    bm, bn, bk = tile
    if min(tile) <= 0:
        raise ValueError(f"[matmul] tile {tile}: sizes must be positive")
    if uses_wmma(dtype, platform):
        wm, wn = wmma_warps(bm, bn)
        if bm % 32 or bn % 32 or bk % 16 or wm % 16 or wn % 16:
            raise ValueError(f"[matmul] tile {tile}: tensor-core tiles need BM, BN multiples of 32 "
                             "and BK a multiple of 16 (wmma fragments are 16x16x16)")
        nwarps = (bm // wm) * (bn // wn)
        threads = nwarps * 32
        smem = (bm * (bk + 8) + bk * (bn + 8)) * 2 + nwarps * 16 * 16 * 4
        acc = (wm // 16) * (wn // 16) * 8 + (wm // 16 + wn // 16) * 8
        per_thread_load = (bm * bk + bn * bk) // threads
        if (bm * bk) % threads or (bn * bk) % threads:
            raise ValueError(f"[matmul] tile {tile}: BMxBK and BNxBK must divide over {threads} threads")
        kernel, prefetch = "wmma", True
    else:
        if bm % 16 or bn % 16:
            raise ValueError(f"[matmul] tile {tile}: BM and BN must be multiples of 16 (16x16 threads)")
        tm, tn = simt_micro(bm, bn)
        threads = 256
        words = 2 if acc_ctype(dtype) == "f64" else 1
        smem = bk * (bm + 4 + bn + 4) * 4 * words
        per_thread_load = (bm * bk + bn * bk) // threads
        if (bm * bk) % threads or (bn * bk) % threads:
            raise ValueError(f"[matmul] tile {tile}: BMxBK and BNxBK must divide over {threads} threads")
        # matmul.cu's PREFETCH: the next tiles' shares stay live in registers beside the
        # accumulators and a/b fragments where that fits; else each vector is copied
        # straight to shared memory through a few staging registers (the 4 below).
        acc = (tm * tn + tm + tn) * words + per_thread_load * max(1, ITEMSIZE[dtype] // 4)
        prefetch = acc <= PREFETCH_REG_BUDGET
        if not prefetch:
            acc = (tm * tn + tm + tn) * words + 4
        kernel = "simt"
    if threads > MAX_THREADS:
        raise ValueError(f"[matmul] tile {tile}: {threads} threads per block exceed the limit {MAX_THREADS}")
    limit, whose = LARGEST_SMEM["hip" if platform == "hip" else "cuda"]
    if smem_limit is not None:
        limit, whose = smem_limit, "this device's, with the opt-in"
    if smem > limit:
        raise ValueError(f"[matmul] tile {tile}: {smem} bytes of shared memory for matmul_{kernel} ({dtype}) "
                         f"exceed the shared-memory limit of {limit} bytes per block ({whose})")
    if acc > ACC_REG_BUDGET:
        raise ValueError(f"[matmul] tile {tile}: about {acc} registers per thread for accumulators "
                         f"exceed the register budget of {ACC_REG_BUDGET} (the hardware limit is 255; "
                         "the rest is needed for addresses) and would spill")
    return MatmulConfig(kernel, tuple(tile), threads, smem, acc, prefetch)


def matmul_config(dtype: str, M: int = 0, N: int = 0, K: int = 0, tile=None,
                  platform: str = "cuda", smem_limit: int | None = None) -> MatmulConfig:
    """Validate a (BM, BN, BK) hint, or pick the largest instantiated tile that still
    gives one block per SM-ish of work (small problems get the small tile)."""
    if tile is not None:
        return _check_tile(dtype, tuple(tile), platform, smem_limit)
    tiles = matmul_tiles(dtype, platform)  # largest first
    for t in tiles:
        if cdiv(M, t[0]) * cdiv(N, t[1]) >= 64:
            return _check_tile(dtype, t, platform, smem_limit)
    return _check_tile(dtype, tiles[-1], platform, smem_limit)


def matmul_geometry(cfg: MatmulConfig, M: int, N: int, batch: int):
    """(grid, block, dynamic shared bytes) for a matmul of C (batch, M, N): matmul.cu
    takes its tiles from dynamic shared memory, cfg.smem_bytes of it."""
    bm, bn, _ = cfg.tile
    gy = cdiv(M, bm)
    if gy > MAX_GRID_YZ:
        raise ValueError(f"[matmul] M={M} needs {gy} row tiles, over the grid y limit {MAX_GRID_YZ}")
    return (cdiv(N, bn), gy, min(batch, MAX_GRID_YZ)), (cfg.threads, 1, 1), cfg.smem_bytes
