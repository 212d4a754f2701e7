"""Launch geometry and tile-hint validation: pure Python, no GPU."""
import pytest

from tessera.kernels.launchers import geometry as g
from tessera.kernels.launchers import registry as r

pytestmark = pytest.mark.cpu_only("launch geometry and tile rules: pure Python, no tensors")


@pytest.mark.parametrize("warp", [32, 64])
@pytest.mark.parametrize("rows,cols", [(1, 1), (31, 33), (1023, 4097), (5, 2048), (5, 2049), (100000, 7)])
def test_rows_geometry_covers_every_row(rows, cols, warp):
    (gx, gy, gz), (bx, by, bz) = g.rows_geometry(rows, cols, warp)
    assert gy == gz == bz == 1
    assert bx % warp == 0 and bx * by <= 256          # matches ROW_THREADS in reduce_common.cuh
    assert by == 1 or bx == warp                        # group_allreduce's two supported shapes
    assert gx * by >= rows and (gx - 1) * by < rows     # every row once, no empty block
    assert (bx == warp) == (cols <= g.WARP_ROW_MAX_COLS)


def test_geometry_rejects_empty():
    for fn, args in [(g.rows_geometry, (0, 5)), (g.cols_geometry, (1, 3, 0)), (g.elementwise_geometry, (0,))]:
        with pytest.raises(ValueError):
            fn(*args)


def test_cols_and_elementwise_geometry_caps():
    grid, block = g.cols_geometry(10**6, 3, 33)
    assert grid == (2, 65535, 1) and block == (32, 8, 1)  # grid.y capped; the kernel loops over outer
    assert g.elementwise_geometry(10**12)[0][0] == g.ELEMENTWISE_MAX_BLOCKS
    assert g.elementwise_geometry(257) == ((2, 1, 1), (256, 1, 1))
    assert g.transpose_geometry(70000, 33, 65) == ((3, 2, 65535), (32, 8, 1))


@pytest.mark.parametrize("rows,n,sms", [(1, 1, 132), (1, 10**7, 132), (3, 4097, 132), (1000, 10**6, 132),
                                         (2, 5 * 1024, 4)])
def test_scan_geometry_segments_partition_the_row(rows, n, sms):
    segs, seg_len, grid, block = g.scan_geometry(rows, n, sms)
    assert seg_len % g.SCAN_CHUNK == 0
    assert segs * seg_len >= n and (segs - 1) * seg_len < max(n, 1)
    assert grid[0] == segs and block == (256, 1, 1)
    if rows >= 2 * sms:
        assert segs == 1  # enough rows to fill the GPU: one launch


def test_layer_norm_params_geometry():
    chunks, rpc, grid, block = g.layer_norm_params_geometry(10**8, 50)
    assert chunks <= g.MAX_GRID_YZ and chunks * rpc >= 10**8
    assert grid == (2, chunks, 1)


@pytest.mark.parametrize("dtype", r.MATMUL_DTYPES)
@pytest.mark.parametrize("platform", ["cuda", "hip"])
def test_instantiated_tiles_pass_their_own_limits(dtype, platform):
    for tile in r.matmul_tiles(dtype, platform):
        cfg = g.matmul_config(dtype, tile=tile, platform=platform)
        assert cfg.smem_bytes <= g.MAX_STATIC_SMEM and cfg.threads <= g.MAX_THREADS
        assert r.matmul_name(dtype, tile, platform=platform) in (
            r.INSTANTIATIONS if platform == "cuda" else r.HIP_INSTANTIATIONS)["matmul.cu"]


def test_matmul_config_picks_small_tile_for_small_problems():
    assert g.matmul_config("fp32", 64, 64, 64).tile == (64, 64, 8)
    assert g.matmul_config("fp32", 4096, 4096, 64).tile == (128, 128, 8)
    assert g.matmul_config("fp16", 4096, 4096, 64).kernel == "wmma"
    assert g.matmul_config("fp16", 4096, 4096, 64, platform="hip").kernel == "simt"


@pytest.mark.parametrize("dtype,tile,limit", [
    ("fp32", (128, 128, 512), "shared-memory limit"),
    ("fp32", (256, 256, 64), "register budget"),
    ("fp64", (256, 256, 8), "register budget"),
    ("fp32", (100, 64, 8), "multiples of 16"),
    ("fp16", (128, 128, 24), "multiple of 16"),
    ("fp16", (128, 128, 512), "shared-memory limit"),
    ("fp16", (512, 512, 32), "register budget"),
    ("fp32", (32, 32, 4), "divide over 256 threads"),
])
def test_tile_hints_are_validated_naming_the_limit(dtype, tile, limit):
    with pytest.raises(ValueError, match=limit):
        g.matmul_config(dtype, tile=tile)


def test_matmul_geometry():
    cfg = g.matmul_config("fp32", tile=(128, 128, 8))
    # matmul.cu's tiles are dynamic shared memory: the launch passes their bytes
    assert g.matmul_geometry(cfg, 1023, 4097, 70000) == ((33, 8, 65535), (256, 1, 1), 8 * (132 + 132) * 4)
    with pytest.raises(ValueError, match="grid y limit"):
        g.matmul_geometry(cfg, 128 * 65536, 1, 1)


def test_registry_names_and_dtypes():
    assert r.reduce_name("cols", "argmax", "int8") == "reduce_cols<ArgMaxOp<i64>,i8,i64>"
    assert r.reduce_name("rows", "all", "bf16") == "reduce_rows<AllOp<f32>,bf16,bool>"
    with pytest.raises(ValueError, match="does not accept"):
        r.reduce_name("rows", "var", "int32")
    assert r.matmul_name("bf16", (64, 64, 32), True, False, "gelu") == "matmul_wmma<bf16,64,64,32,32,32,true,false,2>"
    assert r.cast_name("fp32", "fp8_e4m3", True) == "cast<f32,fp8e4m3,true>"
    assert r.cast_name("fp32", "fp16", True) == "cast<f32,f16,false>"  # saturation only for fp8
    for insts in (r.INSTANTIATIONS, r.HIP_INSTANTIATIONS):
        for names in insts.values():
            assert len(names) == len(set(names))
    assert not any("wmma" in n for n in r.HIP_INSTANTIATIONS["matmul.cu"])


def test_collapse_dims_and_strided_layout():
    pytest.importorskip("numpy")
    from tessera.kernels.launchers.movement import collapse_dims, strided_layout
    assert collapse_dims((2, 3, 4), (12, 4, 1)) == ([24], [1])
    assert collapse_dims((2, 3, 4), (1, 8, 2)) == ([2, 12], [1, 2])  # 8 == 4 * 2: one axis
    assert collapse_dims((2, 3, 4), (1, 9, 2)) == ([2, 3, 4], [1, 9, 2])
    assert collapse_dims((5, 1, 6), (0, 7, 1)) == ([5, 6], [0, 1])
    rec = strided_layout((2, 3), (1, 2))
    assert int(rec["ndim"]) == 2 and list(rec["shape"][:3]) == [2, 3, 1] and rec.dtype.itemsize == 136
    with pytest.raises(ValueError, match="limit of 8"):
        strided_layout(tuple([2] * 9), tuple(4 ** i for i in range(9))[::-1])
