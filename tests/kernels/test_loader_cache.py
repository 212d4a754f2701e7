"""Kernel cache keys, the disk cache (atomic writes, corrupt entries) and listeners."""
import json
import os

import pytest

from tessera.kernels import loader

pytestmark = pytest.mark.cpu_only("kernel cache keys, disk cache and listeners; no tensors")

BASE = dict(source="src", headers={"compat.cuh": "a"}, options=("-O3",), name_expressions=["k<f32>"],
            arch="sm_90", compiler_version="nvrtc-13.0")


def key(**kw):
    args = dict(BASE, **kw)
    return loader.cache_key(args["source"], args["headers"], args["options"], args["name_expressions"],
                            args["arch"], args["compiler_version"])


def test_key_is_deterministic_and_sensitive_to_every_input():
    k0 = key()
    assert k0 == key() and len(k0) == 64
    variants = [dict(source="src "), dict(headers={"compat.cuh": "b"}), dict(headers={"other.cuh": "a"}),
                dict(options=("-O2",)), dict(options=()), dict(name_expressions=["k<f64>"]),
                dict(arch="sm_80"), dict(compiler_version="nvrtc-12.9")]
    keys = {key(**v) for v in variants}
    assert k0 not in keys and len(keys) == len(variants)


def test_key_has_no_join_ambiguity():
    assert key(source="ab", arch="c") != key(source="a", arch="bc")


def test_included_headers_follow_the_include_chain():
    h = loader.included_headers("softmax.cu")
    assert set(h) >= {"reduce_common.cuh", "compat.cuh"}
    assert h["compat.cuh"] == (loader.KERNELS_DIR / "compat.cuh").read_text()


def test_disk_cache_round_trip_and_corruption_is_a_miss(tmp_path):
    c = loader.DiskCache(tmp_path)
    assert c.get("k1") is None
    c.put("k1", b"\x7fELFbinary", {"lowered": {"a": "_Z1a"}})
    binary, meta = c.get("k1")
    assert binary == b"\x7fELFbinary" and meta["lowered"] == {"a": "_Z1a"}
    # flip the binary: the checksum in the meta no longer matches
    (tmp_path / "k1.bin").write_bytes(b"\x7fELFbinarY")
    assert c.get("k1") is None
    assert not (tmp_path / "k1.bin").exists()  # a corrupt entry is removed
    c.put("k2", b"x", {})
    (tmp_path / "k2.json").write_text("{not json")
    assert c.get("k2") is None
    c.put("k3", b"x", {})
    meta = json.loads((tmp_path / "k3.json").read_text())
    meta["key"] = "someone-else"
    (tmp_path / "k3.json").write_text(json.dumps(meta))
    assert c.get("k3") is None


def test_disk_writes_are_atomic(tmp_path, monkeypatch):
    c = loader.DiskCache(tmp_path)
    c.put("k", b"old", {})
    real_replace = os.replace

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        c.put("k", b"new-binary", {})
    monkeypatch.setattr(os, "replace", real_replace)
    assert c.get("k")[0] == b"old"  # the previous entry is intact
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temp file left behind


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path / "kc"))
    assert loader.cache_dir() == tmp_path / "kc"
    monkeypatch.delenv("TESSERA_CACHE_DIR")
    assert loader.cache_dir().parts[-3:] == (".cache", "tessera", "kernels")


def test_compile_listeners():
    seen = []
    fn = loader.add_compile_listener(seen.append)
    try:
        loader._notify("compile", "x.cu:k", 0.5, "abc")
    finally:
        loader.remove_compile_listener(fn)
    loader._notify("cache_hit", "x.cu:k", 0.0, "abc")
    assert seen == [{"kind": "compile", "name": "x.cu:k", "seconds": 0.5, "source_hash": "abc"}]


def test_ptxas_log_parsing():
    log = """ptxas info    : Compiling entry function '_Z1kPf' for 'sm_90'
ptxas info    : Function properties for _Z1kPf
ptxas         .     8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 8 bytes cumulative stack size, 4352 bytes smem
ptxas info    : Compiling entry function '_Z1gPf' for 'sm_90'
ptxas info    : Function properties for _Z1gPf
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 6 registers, used 0 barriers
"""
    r = loader.parse_ptxas_log(log)
    assert r["_Z1kPf"] == loader.KernelResources(40, 4, 12, 8, 4352)
    assert r["_Z1gPf"].registers == 6 and r["_Z1gPf"].spill_stores == 0


def test_import_does_not_need_cupy():
    import sys
    assert "tessera.kernels.loader" in sys.modules
    import tessera.kernels.launchers  # noqa: F401  (CuPy is only imported inside launchers)


class _FakeModule:
    def __init__(self, path=None, code=None, options=(), name_expressions=()):
        self.path, self.code = path, code
        if path is not None:
            assert open(path, "rb").read(4) == b"\x7fELF"  # a real cubin from NVRTC

    def get_function(self, name):
        return ("fn", name, self.path)


def _fake_cupy():
    import types
    cp = types.ModuleType("cupy")
    cp.__version__ = "0-fake"
    cp.RawModule = _FakeModule
    runtime = types.SimpleNamespace(is_hip=False, getDeviceProperties=lambda i: {"major": 9, "minor": 0})
    dev = types.SimpleNamespace(compute_capability="90", id=0)
    cp.cuda = types.SimpleNamespace(runtime=runtime, Device=lambda: dev,
                                    driver=types.SimpleNamespace(CUDADriverError=type("E", (Exception,), {})),
                                    compiler=types.SimpleNamespace(CompileException=type("C", (Exception,), {})))
    return cp


def test_get_kernel_compiles_once_then_hits_the_disk_cache(tmp_path, monkeypatch):
    """The runtime path without a GPU: real NVRTC, a stand-in CuPy that only loads files."""
    try:
        from cuda.bindings import nvrtc  # noqa: F401
    except Exception:
        pytest.skip("cuda.bindings.nvrtc not importable")
    if not loader.cuda_include_dirs():
        pytest.skip("no CUDA toolkit headers for NVRTC")
    from tessera.backend import cupy_source
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    events = []
    loader.add_compile_listener(events.append)
    prev = cupy_source.use(_fake_cupy())  # the CuPy the CUDA backend is handed
    try:
        loader.clear_memory_cache()
        fn = loader.get_kernel("cast.cu", "cast<f32,f16,false>")
        assert fn[1].startswith("_Z4cast") and fn[2].startswith(str(tmp_path))
        assert loader.get_kernel("cast.cu", "cast<f32,f16,false>") is fn  # in-memory: no event
        loader.clear_memory_cache()
        loader.get_kernel("cast.cu", "cast<f32,f16,false>")
        bins = list(tmp_path.glob("*.bin"))
        assert len(bins) == 1
        bins[0].write_bytes(b"\x7fELF-truncated")  # corrupt: must recompile, not load garbage
        loader.clear_memory_cache()
        loader.get_kernel("cast.cu", "cast<f32,f16,false>")
    finally:
        loader.remove_compile_listener(events.append)
        cupy_source.use(*prev) if prev else cupy_source.use(None)
    assert [e["kind"] for e in events] == ["compile", "cache_hit", "compile"]
    assert len({e["source_hash"] for e in events}) == 1 and events[0]["name"] == "cast.cu:cast<f32,f16,false>"


def test_compile_check_reports_are_cached_per_input(tmp_path, monkeypatch):
    try:
        from cuda.bindings import nvrtc  # noqa: F401
    except Exception:
        pytest.skip("cuda.bindings.nvrtc not importable")
    if not loader.cuda_include_dirs():
        pytest.skip("no CUDA toolkit headers for NVRTC")
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    first = loader.compile_check_nvrtc("cast.cu", ["cast<f32,f16,false>"], arch="sm_80")
    assert first.seconds > 0 and first.kernels["cast<f32,f16,false>"].registers > 0
    again = loader.compile_check_nvrtc("cast.cu", ["cast<f32,f16,false>"], arch="sm_80")
    assert again.seconds == 0.0 and again.kernels == first.kernels and "ptxas" in again.log
    other = loader.compile_check_nvrtc("cast.cu", ["cast<f32,f16,false>"], arch="sm_90")
    assert other.seconds > 0  # another arch is another key


# NVRTC 13.0.88 / 13.5 (cuda-bindings 13.3.1 / 13.4.4) for examples/custom_spectral_filter.py
NVRTC13_LOG = """ptxas info    : 4 bytes gmem
ptxas info    : Compiling entry function 'spectral_filter_adjoint' for 'sm_90'
ptxas info    : Function properties for spectral_filter_adjoint
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 16 registers, used 0 barriers
ptxas info    : Compile time = 71.495 ms
ptxas info    : Compiling entry function 'spectral_filter' for 'sm_90'
ptxas info    : Function properties for spectral_filter
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 16 registers, used 0 barriers
ptxas info    : Compile time = 133.023 ms"""


def test_ptxas_log_parsing_nvrtc13_extern_c_entries():
    r = loader.parse_ptxas_log(NVRTC13_LOG)
    assert set(r) == {"spectral_filter", "spectral_filter_adjoint"}
    assert all(v.registers == 16 and v.spill_stores == 0 for v in r.values())


def test_compile_check_without_a_report_entry_is_an_error_with_the_log(tmp_path, monkeypatch):
    # the H200 run reported registers == 0 for the custom example's kernels: a kernel the
    # ptxas report does not name got an all-zero report, which passes every spill check
    # (TRIAGE 2026-12-04 A19)
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    src = tmp_path / "k.cu"
    src.write_text('extern "C" __global__ void k(float* x) { x[0] = 1; }\n')
    monkeypatch.setattr(loader, "nvrtc_compile", lambda f, names, arch, opts: (
        b"", {n: n for n in names}, NVRTC13_LOG))
    monkeypatch.setattr(loader, "nvrtc_version", lambda: "nvrtc-test")
    with pytest.raises(loader.KernelCompileError, match=r"(?s)names no entry for k \(entry k\).*"
                                                         r"Compiling entry function 'spectral_filter'"):
        loader.compile_check_nvrtc(str(src), ["k"], arch="sm_90")
    assert loader._cached_report(loader._report_key("nvrtc-test", str(src), ["k"], "sm_90", ())) is None
    rep = loader.compile_check_nvrtc(str(src), ["spectral_filter"], arch="sm_90")
    assert rep.kernels["spectral_filter"].registers == 16


def test_hipcc_compile_check_is_a_cache_hit_the_second_time(tmp_path, monkeypatch):
    # the remark parser reassigned `key`, so the report was stored under "VGPRs" & co and
    # every identical check compiled again
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    calls = tmp_path / "calls"
    hipcc = tmp_path / "hipcc"
    hipcc.write_text(f"""#!/bin/sh
if [ "$1" = "--version" ]; then echo "HIP version: 6.2 (fake)"; exit 0; fi
echo x >> {calls}
echo "check.cpp:1:1: remark: Function Name: k [-Rpass-analysis=kernel-resource-usage]" >&2
echo "check.cpp:1:1: remark:     VGPRs: 24 [-Rpass-analysis=kernel-resource-usage]" >&2
echo "check.cpp:1:1: remark:     ScratchSize [bytes/lane]: 0 [-Rpass-analysis=kernel-resource-usage]" >&2
""")
    hipcc.chmod(0o755)
    monkeypatch.setattr(loader, "hipcc_path", lambda: str(hipcc))
    loader._hipcc_version_cache.clear()
    src = tmp_path / "k.cu"
    src.write_text('extern "C" __global__ void k(float* x) { x[0] = 1; }\n')
    first = loader.compile_check_hipcc(str(src), ["k"], arch="gfx90a")
    again = loader.compile_check_hipcc(str(src), ["k"], arch="gfx90a")
    assert first.kernels["k"].registers == 24 and again.kernels == first.kernels
    assert calls.read_text().count("x") == 1 and again.seconds == 0.0
