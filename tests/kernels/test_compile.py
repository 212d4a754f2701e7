"""Every instantiation tessera can launch compiles, without register spills.

CUDA: NVRTC (cuda.bindings) for sm_80 and sm_90 with `-Xptxas=-v`; the ptxas report
must show 0 bytes of spill stores/loads for each kernel in INSTANTIATIONS.
HIP: hipcc with HIP_PLATFORM=amd compiles device code down to gfx90a ISA for each
kernel in HIP_INSTANTIATIONS (full codegen, not just a syntax check); the resource
remarks must show no VGPR spills (SGPR spills land in VGPR lanes, not memory).
"""
import importlib.util
import os

import pytest

from tessera.kernels import loader
from tessera.kernels.launchers.registry import HIP_INSTANTIATIONS, INSTANTIATIONS


def _timeout_marks():
    """pytest-timeout counts a test's fixture setup against its limit unless func_only: the
    warm-up below then timed out the first test of each xdist worker (34 errors on the
    H200 host, 60 s limit). The mark is added only where the plugin is installed (it
    would be an unknown marker otherwise); the limit itself stays the run's."""
    return [pytest.mark.timeout(func_only=True)] if importlib.util.find_spec("pytest_timeout") else []


pytestmark = [pytest.mark.cpu_only("compiles kernel sources with NVRTC/hipcc on the host; no tensors"),
              *_timeout_marks()]


def _warm_workers(cpus=None, env=os.environ):
    """Processes for the warm-up: the cores shared among the xdist workers, each of which
    runs its own copy of the fixture (on the H200 host, two of 15 workers each started 16
    compile processes on 16 cores)."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // max(1, int(env.get("PYTEST_XDIST_WORKER_COUNT") or 1)))


@pytest.fixture(scope="session", autouse=True)
def _compile_in_parallel():
    """The compiles dominate this module's time and use one core each: run them
    over this process's share of the cores first (the reports land in the
    content-keyed disk cache), so that each test below reads its report. Largest
    jobs first, for balance. Once per process (session scope)."""
    jobs = []
    if _nvrtc_skip_reason() is None:
        jobs += [("nvrtc", f, INSTANTIATIONS[f], a) for f in INSTANTIATIONS for a in ("sm_80", "sm_90")]
    if loader.hipcc_path() is not None:
        jobs += [("hipcc", f, HIP_INSTANTIATIONS[f], "gfx90a") for f in HIP_INSTANTIATIONS]
    jobs.sort(key=lambda j: -len(j[2]) * (3 if "matmul" in j[1] or "gemm" in j[1] else 1))
    loader.warm_compile_checks(jobs, workers=_warm_workers())
    yield


def _nvrtc_skip_reason():
    try:
        from cuda.bindings import nvrtc  # noqa: F401
    except Exception as e:
        return f"cuda.bindings.nvrtc not importable ({e})"
    if not loader.cuda_include_dirs():
        return "no CUDA toolkit headers (cuda_fp16.h) found for NVRTC; set CUDA_PATH"
    return None


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("file_name", sorted(INSTANTIATIONS))
def test_nvrtc_compiles_without_spills(file_name, arch):
    reason = _nvrtc_skip_reason()
    if reason:
        pytest.skip(reason)
    names = INSTANTIATIONS[file_name]
    rep = loader.compile_check_nvrtc(file_name, names, arch=arch)
    assert set(rep.kernels) == set(names)
    missing = [n for n, r in rep.kernels.items() if r.registers == 0]
    assert not missing, f"no ptxas report for {missing[:5]}"
    spills = {n: (r.spill_stores, r.spill_loads) for n, r in rep.spilling().items()}
    assert not spills, f"register spills in {file_name} for {arch}: {spills}"


@pytest.mark.parametrize("file_name", sorted(HIP_INSTANTIATIONS))
def test_hipcc_compiles_without_spills(file_name):
    if loader.hipcc_path() is None:
        pytest.skip("hipcc not installed")
    names = HIP_INSTANTIATIONS[file_name]
    rep = loader.compile_check_hipcc(file_name, names, arch="gfx90a")
    assert rep.kernels, "hipcc produced no kernel resource report"
    spills = {n: r.spill_stores for n, r in rep.spilling().items()}
    assert not spills, f"VGPR spills in {file_name} for gfx90a: {spills}"


def test_compile_error_names_file_instantiation_and_log():
    if _nvrtc_skip_reason():
        pytest.skip(_nvrtc_skip_reason())
    with pytest.raises(loader.KernelCompileError) as ei:
        loader.compile_check_nvrtc("cast.cu", ["cast<f32,no_such_type,false>"])
    msg = str(ei.value)
    assert "cast.cu" in msg and "cast<f32,no_such_type,false>" in msg and "no_such_type" in ei.value.log


def test_warm_up_shares_the_cores_among_xdist_workers():
    assert _warm_workers(16, {}) == 16
    assert _warm_workers(16, {"PYTEST_XDIST_WORKER_COUNT": "15"}) == 1
    assert _warm_workers(16, {"PYTEST_XDIST_WORKER_COUNT": "4"}) == 4
    assert _warm_workers(2, {"PYTEST_XDIST_WORKER_COUNT": "8"}) == 1


def test_warm_up_is_not_counted_by_pytest_timeout(request):
    marks = [m for m in request.node.iter_markers("timeout")]
    if importlib.util.find_spec("pytest_timeout") is None:
        assert marks == []  # no plugin: no mark, and nothing that needs it
    else:
        assert marks and marks[0].kwargs == {"func_only": True} and not marks[0].args
