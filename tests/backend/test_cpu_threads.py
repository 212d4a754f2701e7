"""The CPU backend's BLAS thread budget (tessera.backend.cpu)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tessera.backend import cpu
from tessera.errors import TesseraError

pytestmark = pytest.mark.cpu_only("the CPU backend's BLAS/OpenMP thread budget, malloc "
                                  "tuning and fork handling")


def test_set_and_get_round_trip():
    prev = cpu.set_blas_threads(1)
    if prev is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS here")
    try:
        assert cpu.blas_threads() == 1
        a = np.random.default_rng(0).standard_normal((64, 64))
        np.testing.assert_allclose(a @ a.T, (a @ a.T).T, rtol=1e-12)  # BLAS still works
    finally:
        cpu.set_blas_threads(prev)
    assert cpu.blas_threads() == prev


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_thread_count(bad):
    with pytest.raises(TesseraError, match=r"^\[set_blas_threads\]"):
        cpu.set_blas_threads(bad)


def _threads_at_import(env):
    code = "import tessera.backend.cpu as c; print(c.blas_threads())"
    full = {k: v for k, v in os.environ.items()
            if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "TESSERA_BLAS_THREADS")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                         text=True, check=True).stdout.split()[-1]
    return None if out == "None" else int(out)


@pytest.mark.skipif(cpu.blas_threads() is None, reason="NumPy's BLAS is not OpenBLAS here")
def test_default_budget_and_overrides():
    n = cpu._n_cpus()
    default = _threads_at_import({})
    if n <= 2:
        assert default == 1  # the busy-waiting second worker is not worth a core
    assert _threads_at_import({"TESSERA_BLAS_THREADS": "2"}) == 2
    assert _threads_at_import({"OPENBLAS_NUM_THREADS": "2"}) == 2  # the user's choice wins


def _import_report(env):
    """(malloc tuned, GOMP_SPINCOUNT, OMP_WAIT_POLICY) as `import tessera` leaves them."""
    code = ("import os, tessera.backend.cpu as c; "
            "print(c.MALLOC_TUNED, os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")
    full = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "TESSERA_MALLOC_TUNING",
                         "GLIBC_TUNABLES") and not k.startswith("MALLOC_")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[-3] == "True", out[-2], out[-1]


def test_openmp_spin_default_and_user_settings_win():
    assert _import_report({})[1] == str(cpu.SPIN_COUNT)
    assert _import_report({"OMP_WAIT_POLICY": "PASSIVE"})[1:] == ("None", "PASSIVE")
    assert _import_report({"GOMP_SPINCOUNT": "7"})[1] == "7"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_malloc_tuning_and_its_opt_outs():
    import platform
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert _import_report({})[0] is True
    assert _import_report({"TESSERA_MALLOC_TUNING": "0"})[0] is False
    assert _import_report({"MALLOC_ARENA_MAX": "2"})[0] is False  # the user tunes malloc


def test_temporaries_do_not_page_fault_after_tuning():
    """The reason for the tuning: a freed temporary's pages stay in the process, so
    the next buffer of that size is not zero-filled page by page again."""
    import resource
    if not cpu.MALLOC_TUNED:
        pytest.skip("malloc tuning not applied here")
    a = np.ones((256, 784), np.float32)
    for _ in range(3):
        np.add(np.multiply(a, 0.5), a)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        np.add(np.multiply(a, 0.5), a)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 50 * 196 // 4, faults  # untuned: ~2 x 196 pages per iteration


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_child_runs_openmp_code_without_hanging():
    """libgomp is not fork-safe: after the parent ran parallel regions, a child's
    first region would wait forever for workers that did not survive the fork.
    tessera sets OpenMP to one thread in forked children (pooled GEMM, fused kernel)."""
    code = """
import os, sys, numpy as np, tessera as ts
from tessera.backend.cpu_gemm import matmul
a, b = np.ones((64, 784), np.float32), np.ones((784, 256), np.float32)
x = ts.ones((512, 512), device="cpu")  # a CUDA context would not survive the fork
want = (matmul(a, b)[0, 0], float((ts.exp(x) * 2 + 1).sum()))  # the parent's pool runs
pid = os.fork()
if pid == 0:
    got = (matmul(a, b)[0, 0], float((ts.exp(x) * 2 + 1).sum()))
    os._exit(0 if got == want else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
