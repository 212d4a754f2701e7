"""Every instantiation tessera can launch compiles, without register spills.

CUDA: NVRTC (cuda.bindings) for sm_80 and sm_90 with `-Xptxas=-v`; the ptxas report
must show 0 bytes of spill stores/loads for each kernel in INSTANTIATIONS.
HIP: hipcc with HIP_PLATFORM=amd compiles device code down to gfx90a ISA for each
kernel in HIP_INSTANTIATIONS (full codegen, not just a syntax check); the resource
remarks must show no VGPR spills (SGPR spills land in VGPR lanes, not memory).
"""
import pytest

from tessera.kernels import loader
from tessera.kernels.launchers.registry import HIP_INSTANTIATIONS, INSTANTIATIONS

pytestmark = pytest.mark.cpu_only("compiles kernel sources with NVRTC/hipcc on the host; no tensors")


@pytest.fixture(scope="module", autouse=True)
def _compile_in_parallel():
    """The compiles dominate this module's time and use one core each: run them
    over all cores first (the reports land in the content-keyed disk cache), so
    that each test below reads its report. Largest jobs first, for balance."""
    jobs = []
    if _nvrtc_skip_reason() is None:
        jobs += [("nvrtc", f, INSTANTIATIONS[f], a) for f in INSTANTIATIONS for a in ("sm_80", "sm_90")]
    if loader.hipcc_path() is not None:
        jobs += [("hipcc", f, HIP_INSTANTIATIONS[f], "gfx90a") for f in HIP_INSTANTIATIONS]
    jobs.sort(key=lambda j: -len(j[2]) * (3 if "matmul" in j[1] or "gemm" in j[1] else 1))
    loader.warm_compile_checks(jobs)
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
