"""Shared test fixtures: the device fixture (always `cpu`, plus `cuda` when a GPU
is usable, so every device-parametrized test runs on both), the rule that every test
chooses its device (`device` or `cpu_only`; the default device is pinned per test),
and hypothesis profiles sized for a 2-core CI machine."""
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


# Every test chooses its device: it takes `device` (so it runs on the CPU and, where a GPU
# is usable, on CUDA), or it is marked `cpu_only("why")`, or it is a `gpu` test. None may
# depend on the process's default device, which is CUDA on a GPU host: the fixture below
# pins the default to the test's own device and a test that chooses none is a collection
# error (see pytest_make_collect_report).
CPU_ONLY_HELP = ('take the `device` fixture, or mark it @pytest.mark.cpu_only("why it tests only '
                 'the CPU") (on the test, its class, or the module\'s pytestmark)')


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cpu_only(reason): tests CPU internals; runs with the CPU as the default "
        "device (every other test takes the `device` fixture)")


def _test_device(item):
    """The device a test runs on: its `device` parameter, "cuda" for a `gpu` test, else None
    (a test that must then be `cpu_only`)."""
    if "device" in item.fixturenames:
        spec = getattr(item, "callspec", None)
        return spec.params.get("device", "cpu") if spec is not None else "cpu"
    if item.get_closest_marker("gpu") is not None:
        return "cuda"
    return None


def _default_for(item):
    """The default device a test runs with: its `device` parameter; the CPU for a `gpu` test
    (it names "cuda" where it means it; what it builds without a device is its CPU
    reference) and for a `cpu_only` one."""
    return _test_device(item) if "device" in item.fixturenames else "cpu"


def _chooses_no_device(item):
    if _test_device(item) is not None:
        return False
    mark = item.get_closest_marker("cpu_only")
    if mark is None:
        return True
    reason = mark.args[0] if mark.args else mark.kwargs.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise pytest.UsageError(f"{item.nodeid}: cpu_only needs a reason")
    return False


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A module (or class) with tests that choose no device fails to collect, naming them."""
    rep = yield
    if rep.passed and isinstance(collector, (pytest.Module, pytest.Class)):
        bad = sorted({it.originalname for it in rep.result
                      if isinstance(it, pytest.Function) and _chooses_no_device(it)})
        if bad:
            rep.outcome, rep.result = "failed", []
            rep.longrepr = (f"{collector.nodeid}: {', '.join(bad)}: no device chosen (neither "
                            f"the `device` fixture nor a cpu_only mark), so it would run on the "
                            f"process's default device (CUDA on a GPU host); {CPU_ONLY_HELP}")
    return rep


@pytest.fixture(autouse=True)
def _pin_default_device(request):
    """Run each test with the default device set to its own device (the CPU for a
    `cpu_only` or `gpu` test), then realize the fusion groups the test left pending and
    restore the previous default and the global modes a test can leave behind, so that
    nothing leaks into the next test (fusion.explain's recording, for one, makes every
    later lazy op record its source line, which check_numerics then reports)."""
    import tessera
    from tessera._config import STATE
    from tessera.fusion import lazy

    prev = tessera.default_device()
    modes = (STATE.grad_enabled, STATE.fusion_mode, STATE.autocast, STATE.tile_hint)
    explaining = lazy._explain.enabled
    dev = _default_for(request.node)
    if dev == "cuda" and not GPU:
        dev = prev  # the test skips (device fixture / gpu marker); nothing to pin
    tessera.set_default_device(dev)
    try:
        yield
    finally:
        try:
            lazy.flush_pending("test teardown")
        finally:
            tessera.set_default_device(prev)
            STATE.grad_enabled, STATE.fusion_mode, STATE.autocast, STATE.tile_hint = modes
            lazy._explain.enabled = explaining


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="no CUDA/ROCm GPU with CuPy on this machine")
    keep, cpu_only_on_cuda = [], []
    for item in items:
        if "gpu" in item.keywords and not GPU:
            item.add_marker(skip_gpu)
        # A cpu_only test in a module whose tests all take `device` runs on the CPU only.
        if (item.get_closest_marker("cpu_only") is not None and "device" in item.fixturenames
                and _test_device(item) == "cuda"):
            cpu_only_on_cuda.append(item)
        else:
            keep.append(item)
    if cpu_only_on_cuda:
        config.hook.pytest_deselected(items=cpu_only_on_cuda)
        items[:] = keep
