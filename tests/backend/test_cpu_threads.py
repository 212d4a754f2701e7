"""The CPU backend's BLAS thread budget (tessera.backend.cpu)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tessera.backend import cpu
from tessera.errors import TesseraError


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
