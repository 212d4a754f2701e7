"""matmul.cu's tiles in dynamic shared memory (TRIAGE 2026-12-04 A4): a hinted tile may
need more than the 48 KB a static __shared__ array can have, up to the device's opt-in
limit. The launcher passes the bytes and opts the function in once, tested here without
a GPU (`loader.get_kernel` returns a recorder); the seed's own hint, 128x128x64, runs
against NumPy on every device (`device` fixture; on CUDA under TESSERA_CUDA_SIM=1 too).
"""
import importlib

import numpy as np
import pytest

import tessera as ts
from tessera import schedule
from tessera.kernels import loader
from tessera.kernels.launchers import _runtime as rt
from tessera.kernels.launchers import geometry as g
from tessera.kernels.launchers import smem
from tessera.kernels.launchers.registry import matmul_name

from helpers import assert_close

mm = importlib.import_module("tessera.kernels.launchers.matmul")  # the package re-exports `matmul`
HOST = pytest.mark.cpu_only("launch arguments recorded from NumPy stand-ins; no device runs")
H200 = {"platform": "cuda", "warp_size": 32, "sm_count": 132, "cc": 90, "name": "fake H200",
        "smem_optin": 227 * 1024}
MI200 = dict(H200, platform="hip", warp_size=64, name="fake MI200", smem_optin=64 * 1024)
SEED_TILE = (128, 128, 64)


class RecordingFunction:
    """Stands for a CuPy Function: records launches and attribute writes."""

    def __init__(self, name):
        self.name, self.launches, self.attrs = name, [], []

    def __setattr__(self, key, value):
        if key == "max_dynamic_shared_size_bytes":
            self.attrs.append(value)
        object.__setattr__(self, key, value)

    def __call__(self, grid, block, args, shared_mem=0):
        self.launches.append((grid, block, shared_mem))


@pytest.fixture
def kernels(monkeypatch):
    """{name expression: RecordingFunction}, one per instantiation as the loader caches them."""
    fns = {}
    monkeypatch.setattr(loader, "get_kernel",
                        lambda f, name, options=(): fns.setdefault(name, RecordingFunction(name)))
    monkeypatch.setattr(rt, "cp", lambda: object())  # no CuPy: bf16 would be stored as words
    monkeypatch.setattr(rt, "empty", lambda shape, dt: np.empty(shape, ts.dtypes.get_dtype(dt).cuda_storage))
    monkeypatch.setattr(smem, "_opted", {})
    facts = dict(H200)
    monkeypatch.setattr(rt, "device_facts", lambda: facts)
    return fns, facts


def _operands(dtype, m=200, k=150, n=130):
    rng = np.random.default_rng(0)
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)


# ---- geometry: the byte counts and the limits, pure Python ------------------------------
@HOST
@pytest.mark.parametrize("dtype,tile,kernel,nbytes", [
    ("fp32", SEED_TILE, "simt", 64 * (128 + 4 + 128 + 4) * 4),     # 67,584: over 48 KB
    ("fp16", SEED_TILE, "wmma", (128 * 72 + 64 * 136) * 2 + 8 * 1024),  # 44,032
    ("fp32", (128, 128, 128), "simt", 135168),
    ("fp32", (128, 128, 8), "simt", 8448),                        # registered tiles: unchanged
    ("fp64", (64, 64, 8), "simt", 8704),
])
def test_matmul_shared_bytes_are_the_dynamic_launch_bytes(dtype, tile, kernel, nbytes):
    cfg = g.matmul_config(dtype, tile=tile)
    assert (cfg.kernel, cfg.smem_bytes) == (kernel, nbytes)
    assert g.matmul_geometry(cfg, 300, 300, 1)[2] == nbytes


@HOST
@pytest.mark.parametrize("dtype,tile,platform,limit,pattern", [
    ("fp32", SEED_TILE, "hip", None, r"67584 bytes of shared memory for matmul_simt \(fp32\) exceed the "
                                     r"shared-memory limit of 65536 bytes per block \(an MI200/MI300"),
    ("fp32", (128, 128, 128), "cuda", 99 * 1024, r"tile \(128, 128, 128\): 135168 bytes of shared memory for "
                                                 r"matmul_simt \(fp32\) exceed the shared-memory limit of "
                                                 r"101376 bytes per block \(this device's, with the opt-in\)"),
    ("fp16", (128, 128, 512), "cuda", None, r"280576 bytes .* matmul_wmma \(fp16\) .* 232448 bytes per block "
                                            r"\(an sm_90 GPU's"),
    ("fp32", SEED_TILE, "cuda", 48 * 1024, r"limit of 49152 bytes"),
])
def test_shared_memory_limit_names_kernel_tile_bytes_and_limit(dtype, tile, platform, limit, pattern):
    with pytest.raises(ValueError, match=pattern):
        g.matmul_config(dtype, tile=tile, platform=platform, smem_limit=limit)


@HOST
def test_seed_tile_in_fp64_is_over_the_register_budget_not_shared_memory():
    # 135,168 B fit an sm_90, but 8x8 f64 accumulators per thread spill (ptxas: 255 registers)
    with pytest.raises(ValueError, match=r"tile \(128, 128, 64\): about 164 registers per thread"):
        g.matmul_config("fp64", tile=SEED_TILE, smem_limit=227 * 1024)


@HOST
def test_large_tiles_copy_straight_to_shared_memory():
    assert g.matmul_config("fp32", tile=SEED_TILE).prefetch is False  # the shares would spill
    for dtype in ("fp32", "fp64", "fp16"):
        for tile in g.matmul_tiles(dtype, "hip"):
            assert g.matmul_config(dtype, tile=tile, platform="hip").prefetch


@HOST
def test_schedule_validates_against_the_dtypes_kernel_and_the_device_limit():
    schedule.validate_tile_sizes(SEED_TILE, "fp32")  # 67,584 B: fits an sm_90 with the opt-in
    schedule.validate_tile_sizes(SEED_TILE, "fp32", smem_limit=99 * 1024)  # and an sm_86
    with pytest.raises(schedule.ScheduleError, match=r"fp32 kernel: 67584 bytes .* limit of 49152 bytes"):
        schedule.validate_tile_sizes(SEED_TILE, "fp32", smem_limit=48 * 1024)
    with pytest.raises(schedule.ScheduleError, match=r"fp32 kernel: 67584 bytes .* limit of 65536 bytes"):
        schedule.validate_tile_sizes(SEED_TILE, "fp32", platform="hip")
    with pytest.raises(schedule.ScheduleError, match=r"fp64 kernel: about 164 registers"):
        schedule.validate_tile_sizes(SEED_TILE, "fp64")
    schedule.hint(tile_sizes=SEED_TILE)  # some kernel runs it (fp32 SIMT, fp16 tensor cores)


@HOST
def test_smem_limit_read_from_device_facts():
    assert smem.smem_limit(H200) == 232448
    assert smem.smem_limit({"platform": "cuda"}) == 49152  # no opt-in reported: the default


# ---- the launcher: bytes passed, the opt-in set once --------------------------------------
@HOST
def test_hinted_tile_launches_with_dynamic_smem_and_opts_in_once(kernels):
    fns, _ = kernels
    a, b = _operands(np.float32)
    for _ in range(2):
        mm.matmul(a, b, tile=SEED_TILE)
    (fn,) = fns.values()
    assert fn.name == "matmul_simt<f32,128,128,64,8,8,false,false,0>"
    assert fn.launches == [((2, 2, 1), (256, 1, 1), 67584)] * 2
    assert fn.attrs == [67584], "MaxDynamicSharedMemorySize is set once per function"


@HOST
def test_default_tile_passes_its_bytes_without_opting_in(kernels):
    fns, _ = kernels
    mm.matmul(*_operands(np.float32))
    (fn,) = fns.values()
    assert fn.launches[0][2] == g.matmul_config("fp32", 200, 130, 150).smem_bytes > 0
    assert fn.attrs == []


@HOST
def test_hip_has_no_opt_in_and_its_own_limit(kernels):
    fns, facts = kernels
    facts.update(MI200)
    a, b = _operands(np.float32)
    mm.matmul(a, b, tile=(128, 128, 48))  # 50,688 B: over 48 KB, within the 64 KB of LDS
    (fn,) = fns.values()
    assert fn.launches[0][2] == 50688 and fn.attrs == []
    with pytest.raises(ValueError, match=r"67584 bytes .* limit of 65536 bytes per block \(this device's"):
        mm.matmul(a, b, tile=SEED_TILE)


@HOST
def test_device_limit_rejects_before_launch(kernels):
    fns, facts = kernels
    facts["smem_optin"] = 99 * 1024  # sm_86
    with pytest.raises(ValueError, match=r"135168 bytes .* limit of 101376 bytes per block"):
        mm.matmul(*_operands(np.float32), tile=(128, 128, 128))
    assert not any(fn.launches for fn in fns.values())


@pytest.mark.cpu_only("compiles kernel sources with NVRTC on the host; no tensors")
def test_seed_hint_fp32_instantiations_compile_without_spills_for_sm_90():
    # They are not in INSTANTIATIONS (test_compile.py): a hint instantiates them at run time.
    # matmul.cu's PREFETCH threshold was measured on them: prefetching spills here. (For
    # sm_80 ptxas still spills 4-8 bytes in 2 of these 8, the ones without an activation.)
    arch = "sm_90"
    pytest.importorskip("cuda.bindings.nvrtc")
    if not loader.cuda_include_dirs():
        pytest.skip("no CUDA toolkit headers for NVRTC")
    names = [matmul_name("fp32", SEED_TILE, ta, tb, act) for ta in (False, True) for tb in (False, True)
             for act in (None, "gelu")]
    rep = loader.compile_check_nvrtc("matmul.cu", names, arch=arch)
    assert set(rep.kernels) == set(names)
    assert not rep.spilling(), {n: (r.spill_stores, r.registers) for n, r in rep.spilling().items()}
    assert all(r.shared_bytes == 0 for r in rep.kernels.values()), "no static __shared__ left"


# ---- the seed's hint on every device ---------------------------------------------------
# Where the launcher refuses the seed's tile, naming the limit, instead of running it:
# 8x8 f64 accumulators per thread spill on NVIDIA; an MI200's 64 KB of LDS is too small
# for the SIMT kernel's f32 tiles.
SEED_REFUSED = {("cuda", "fp64"): "about 164 registers",
                ("hip", "fp32"): "67584 bytes .* limit of 65536 bytes",
                ("hip", "fp16"): "67584 bytes .* limit of 65536 bytes",  # SIMT there, in f32
                ("hip", "fp64"): "135168 bytes .* limit of 65536 bytes"}


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("dtype", ["fp32", "fp64", "fp16"])  # fp16: the tensor-core kernel on NVIDIA
def test_seed_hint_tile_matmul_matches_numpy(device, dtype, trans_b, monkeypatch):
    @schedule.hint(tile_sizes=list(SEED_TILE))
    def matmul_tiled(x, y):
        return ts.matmul(x, y)

    a, b = _operands(np.float16 if dtype == "fp16" else np.float64)
    A = ts.asarray(a, dtype=dtype, device=device)
    B = ts.asarray(np.ascontiguousarray(b.T), dtype=dtype, device=device).T if trans_b else \
        ts.asarray(b, dtype=dtype, device=device)
    refused = SEED_REFUSED.get((rt.device_facts()["platform"], dtype)) if device == "cuda" else None
    tol = {"fp32": {"rtol": 1e-5, "atol": 1e-4}, "fp16": {"atol": 2e-2}}.get(dtype, {})  # sums of 150 terms
    ref = a.astype(np.float64) @ b.astype(np.float64)
    if refused:
        # a hint is advice: where this dtype's kernel cannot take the tile, the
        # library's tile runs, and a warning names the kernel's limit
        import tessera.backend.cuda as cuda_backend
        monkeypatch.setattr(cuda_backend, "_hint_warned", set())
        with pytest.warns(RuntimeWarning, match=r"tile_sizes=\[128, 128, 64\] cannot run for " + dtype
                          + r".*tile \(128, 128, 64\): " + refused):
            got = matmul_tiled(A, B)
        assert_close(got, ref, dtype=dtype, **tol)
        return
    assert_close(matmul_tiled(A, B), ref, dtype=dtype, **tol)
