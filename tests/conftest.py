"""Shared test fixtures: the device fixture (always `cpu`, plus `cuda` when a GPU
is usable, so every device-parametrized test runs on both), and hypothesis
profiles sized for a 2-core CI machine."""
import os

import pytest
from hypothesis import HealthCheck, settings

# CI is derandomized (the same examples every run, so a red CI is reproducible);
# HYPOTHESIS_PROFILE=thorough explores with fresh random examples.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _gpu_available():
    try:
        import tessera
        return tessera.cuda_is_available()
    except Exception:
        return False


GPU = _gpu_available()
DEVICES = ["cpu"] + (["cuda"] if GPU else [])


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    if request.param == "cuda" and not GPU:
        pytest.skip("no CUDA/ROCm GPU with CuPy on this machine")
    return request.param


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="no CUDA/ROCm GPU with CuPy on this machine")
    for item in items:
        if "gpu" in item.keywords and not GPU:
            item.add_marker(skip_gpu)
