"""Kernel-test fixtures: the `gpu` marker skips without CuPy and a CUDA/ROCm device."""
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA/ROCm GPU")


def _gpu_skip_reason():
    try:
        import cupy
    except Exception:  # ImportError, or a CuPy that cannot find its CUDA libraries
        return "no CUDA GPU/CuPy"
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            return "no CUDA GPU/CuPy"
    except Exception:
        return "no CUDA GPU/CuPy"
    return None


def pytest_collection_modifyitems(config, items):
    reason = None
    checked = False
    for item in items:
        if "gpu" in item.keywords and str(item.fspath).find("kernels") >= 0:
            if not checked:
                reason, checked = _gpu_skip_reason(), True
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
