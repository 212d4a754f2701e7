"""Kernel-test fixtures: the `gpu` marker skips without CuPy and a CUDA/ROCm device."""
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA/ROCm GPU")


def _gpu_skip_reason():
    import tessera  # a GPU through CuPy, or the simulated one (TESSERA_CUDA_SIM)
    return None if tessera.cuda_is_available() else "no CUDA GPU/CuPy"


def pytest_collection_modifyitems(config, items):
    reason = None
    checked = False
    for item in items:
        if "gpu" in item.keywords and str(item.fspath).find("kernels") >= 0:
            if not checked:
                reason, checked = _gpu_skip_reason(), True
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
