"""Schedule hints and the autotuner: illegal hints rejected naming the limit, hints
visible in the Schedule IR, the search space, OpenMP threads applied, results
persisted on disk and reused by a second process, schedule.explain()."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tessera as ts
from tessera import op, schedule
from tessera.autotune import cache, legal_tiles, set_threads
from tessera.autotune.space import restrict, thread_counts
from tessera.kernels.launchers.geometry import _check_tile

from helpers import assert_close

# Every test runs on each device; the OpenMP and second-process tests are the CPU's.
pytestmark = pytest.mark.usefixtures("device")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    cache.clear_memory()
    yield tmp_path
    cache.clear_memory()


def test_seed_snippet_runs_and_shows_in_schedule_ir():
    @schedule.hint(fusion="aggressive", tile_sizes=[128, 128, 64])
    def matmul_tiled(A, B):
        return op.matmul(A, B)
    a, b = np.random.default_rng(0).standard_normal((2, 16, 16))
    A, B = ts.asarray(a), ts.asarray(b)
    assert_close(matmul_tiled(A, B), a @ b)
    text = ts.graph.capture(matmul_tiled, A, B).dump_ir("schedule", print_=False)
    assert "tile_sizes = [128 : i64, 128 : i64, 64 : i64]" in text and 'tile_origin = "schedule.hint"' in text


@pytest.mark.parametrize("tiles,limit", [
    ([128, 128, 512], r"bytes of shared memory for matmul_simt \(fp32\) exceed the shared-memory limit of "
                      r"232448 bytes per block"),  # tiles are dynamic smem: an sm_90 allows 227 KB
    ([512, 512, 8], r"registers per thread for accumulators exceed the register budget"),
    ([100, 128, 8], r"BM and BN must be multiples of 16"),
    ([128, 128, 7], r"BMxBK and BNxBK must divide over 256 threads"),
    ([48], r"multiple of the warp size 32"),
    ([2048], r"at most 1024"),
])
def test_illegal_hints_rejected_naming_the_limit(tiles, limit):
    with pytest.raises(schedule.ScheduleError, match=r"\[schedule.hint\] tile_sizes .*" + limit):
        schedule.hint(tile_sizes=tiles)
    assert isinstance(schedule.ScheduleError("x"), ts.TesseraError)


def test_validate_per_dtype():
    schedule.validate_tile_sizes([128, 128, 64], "fp16")
    schedule.validate_tile_sizes([128, 128, 64], "fp32")  # 67,584 B of dynamic smem: an sm_90 has them
    with pytest.raises(schedule.ScheduleError, match="fp32 kernel: 67584 bytes of shared memory"):
        schedule.validate_tile_sizes([128, 128, 64], "fp32", smem_limit=48 * 1024)
    schedule.validate_tile_sizes([128, 128, 8], "fp16", platform="hip")  # SIMT there: BK 8 is fine
    with pytest.raises(schedule.ScheduleError, match="BK a multiple of 16"):
        schedule.validate_tile_sizes([128, 128, 8], "fp16")
    with pytest.raises(ValueError, match="threads must be a positive int"):
        schedule.hint(threads=0)


def test_legal_but_slow_hint_runs():
    @schedule.hint(tile_sizes=[32, 32, 8], fusion="none")
    def f(a, b):
        return ts.matmul(a, b) + 1
    a = np.arange(12.0).reshape(3, 4)
    assert_close(f(ts.asarray(a), ts.asarray(a.T)), a @ a.T + 1)


def test_space_only_legal_tiles():
    for dts in (["fp32"], ["fp16"], ["fp64"], ["fp32", "fp16"]):
        tiles = legal_tiles(dts)
        assert tiles
        for t in tiles:
            for d in dts:
                _check_tile(d, t, "cuda")
    assert thread_counts(6) == [1, 2, 4, 6] and thread_counts(1) == [1]
    assert restrict([{"fusion": "none", "threads": 1}, {"fusion": "default", "threads": 1}],
                    {"fusion": "aggressive"}) == [{"threads": 1, "fusion": "aggressive"}]


@pytest.mark.cpu_only("OpenMP threads of the CPU backend (libgomp)")
def test_threads_applied_inside_the_scope():
    prev = set_threads(3)
    if prev is None:
        pytest.skip("libgomp not available")
    try:
        import ctypes
        gomp = ctypes.CDLL("libgomp.so.1")
        with schedule.hint(threads=1):
            assert gomp.omp_get_max_threads() == 1
        assert gomp.omp_get_max_threads() == 3
    finally:
        set_threads(prev)


def _prog(a):
    return (ts.exp(a * 0.5) + a).sum(axis=1)


def test_autotune_result_cache_and_explain(cache_dir):
    a = ts.asarray(np.linspace(-1, 1, 64 * 32).reshape(64, 32))
    space = [{"threads": 1, "fusion": "default"}, {"threads": 2, "fusion": "aggressive"},
             {"tile_sizes": (1024, 1024, 8)}]  # the last one cannot run: reported, skipped
    r = schedule.autotune(_prog, a, space=space, reps=2)
    assert not r.from_cache and set(r.times_ms) == {"fusion=default,threads=1", "fusion=aggressive,threads=2"}
    assert r.config == min(space[:2], key=lambda c: r.times_ms[",".join(f"{k}={v}" for k, v in sorted(c.items()))])
    assert "tile_sizes=1024x1024x8" in r.failed and "ScheduleError" in r.failed["tile_sizes=1024x1024x8"]
    data = json.loads((cache_dir / "autotune.json").read_text())
    (key, entry), = data.items()
    machine = "cpu:" if a.device.type == "cpu" else "gpu:"  # cpu:model:cores, gpu:name:arch
    assert key.startswith(f"test_autotune_schedule._prog|{machine}") and key.endswith("|fp64|64x32")
    assert entry["config"] == r.config
    again = schedule.autotune(_prog, a, space=space, reps=2)
    assert again.from_cache and again.config == r.config
    # a nearby shape shares the bucket; another dtype does not
    assert schedule.autotune(_prog, ts.ones((60, 30), dtype="fp64"), space=space).from_cache
    assert not schedule.autotune(_prog, ts.ones((64, 32)), space=space[:1], reps=1).from_cache
    text = r.explain()
    assert "chosen: " in text and "search: " in text and "failed" in text
    assert key in schedule.explain()
    with r.hint:
        assert_close(_prog(a), _prog(a).numpy())
        g = ts.graph.capture(_prog, a)
    assert "autotune = {" in g.dump_ir("schedule", print_=False)


def test_autotune_errors():
    with pytest.raises(ts.TesseraError, match=r"\[autotune\] needs at least one tensor argument"):
        schedule.autotune(lambda: 1)
    with pytest.raises(ts.TesseraError, match=r"\[autotune\] .*no configuration ran"):
        schedule.autotune(_prog, ts.ones((2, 2)), space=[{"tile_sizes": (1024, 1024, 8)}])


@pytest.mark.cpu_only("the search loop on the CPU; fn raises the compile errors a GPU run can")
def test_a_configuration_that_fails_to_compile_is_skipped_and_a_bug_is_not():
    # the aggressive-mode row program's NVRTC error (CuPy's CompileException, not a
    # RuntimeError) ended the whole search on the H200 (TRIAGE 2026-12-04 A5 note)
    from tessera._config import STATE
    from tessera.fusion.render_cuda import CUDACompileError
    from tessera.kernels.loader import KernelCompileError
    from tessera.sim.cuda import CompileException  # the simulated CuPy's, as CuPy's module path
    a = ts.ones((8, 8))
    space = [{"fusion": "default"}, {"fusion": "aggressive"}]
    for exc in (CompileException("fused.cu(18): error: bad"), KernelCompileError("k.cu", ["k"], "log"),
                CUDACompileError("[fusion] NVRTC (sm_90) failed")):
        def fn(x, exc=exc):
            if STATE.fusion_mode == "aggressive":
                raise exc
            return x * 2.0
        r = schedule.autotune(fn, a, space=space, reps=1, cache=False)
        assert r.config == {"fusion": "default"} and type(exc).__name__ in r.failed["fusion=aggressive"]

    def bug(x):
        raise KeyError("a bug in fn is not a configuration that cannot run")
    with pytest.raises(KeyError):
        schedule.autotune(bug, a, space=space, reps=1, cache=False)


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tessera as ts
    from tessera import schedule
    from tessera.autotune import tuner

    @schedule.hint(autotune=True, fusion="default")
    def step(a, b):
        return ts.tanh(a @ b).sum()

    a = ts.asarray(np.ones((32, 32), np.float32))
    out = float(step(a, a))
    res = tuner._last[tuner.fn_id(step)]
    print(json.dumps({"from_cache": res.from_cache, "config": res.config, "out": out,
                      "explain": schedule.explain(step)}))
""")


@pytest.mark.cpu_only("a second process, pinned to the CPU, starts from the tuned disk cache")
def test_second_process_starts_tuned(cache_dir, tmp_path):
    script = tmp_path / "tuned_prog.py"
    script.write_text(SCRIPT)
    # not the subprocess's default device (CUDA on a GPU host)
    env = dict(os.environ, TESSERA_CACHE_DIR=str(cache_dir), TESSERA_DEVICE="cpu")
    runs = []
    for _ in range(2):
        p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert not first["from_cache"] and second["from_cache"]
    assert first["config"] == second["config"] and first["config"]["fusion"] == "default"
    assert first["out"] == pytest.approx(second["out"])
    assert "(from the disk cache)" in second["explain"]


@pytest.mark.gpu
def test_gpu_autotune_searches_tiles_with_cuda_events():
    a = ts.asarray(np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32), device="cuda")
    r = schedule.autotune(lambda x: ts.matmul(x, x), a, reps=3, fixed={"fusion": "default"})
    # a label names the whole configuration, its keys sorted (tuner.label): the fixed
    # fusion mode comes first, the searched tile sizes after it
    configs = [dict(part.split("=", 1) for part in lab.split(",")) for lab in r.times_ms]
    assert len(configs) > 1 and all(c["fusion"] == "default" and "tile_sizes" in c for c in configs)
    assert "fusion=default" in r.explain()
    with r.hint:
        assert_close(ts.matmul(a, a), a.numpy().astype(np.float64) @ a.numpy(), rtol=1e-3, atol=1e-3)
