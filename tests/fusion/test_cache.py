"""Kernel caches: structural keys (sizes and scalar values do not recompile), the disk cache
across processes, corrupt entries, kernel names, explain_kernel, and the no-compiler fallback."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tessera.fusion import compile_c, runtime
from tessera.fusion.ir import alu, const, inp
from tessera.fusion.runtime import add_compile_listener, explain_kernel, remove_compile_listener, run_cpu

pytestmark = pytest.mark.cpu_only("the C kernel caches (run_cpu on NumPy arrays, compiler fallbacks)")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture
def events():
    ev = []
    fn = add_compile_listener(ev.append)
    yield ev
    remove_compile_listener(fn)


def _misses(ev):
    return [e for e in ev if e["kind"] in ("compile", "disk_hit")]


def _step(lr):
    w, g = inp(0, "fp32"), inp(1, "fp32")
    return alu("subtract", w, alu("multiply", g, const(lr, "fp32")))


def test_sizes_and_scalars_do_not_recompile(events):
    for i, n in enumerate([10, 1000, 77777, 3]):
        w = np.random.rand(n).astype(np.float32)
        g = np.random.rand(n).astype(np.float32)
        lr = 0.1 / (i + 1)
        got = run_cpu([_step(lr)], [w, g], w.shape)[0]
        np.testing.assert_allclose(got, w - g * np.float32(lr), rtol=1e-6)
    assert len(_misses(events)) == 1
    # a 2-d contiguous call coalesces to the same 1-d kernel
    w = np.random.rand(4, 5).astype(np.float32)
    run_cpu([_step(0.5)], [w, w], w.shape)
    assert len(_misses(events)) == 1
    # a broadcast input is another key
    run_cpu([_step(0.5)], [w, np.broadcast_to(w[:1], w.shape)], w.shape)
    assert len(_misses(events)) == 2


def test_kernel_name_and_explain(events):
    x = np.random.rand(3, 4).astype(np.float32)
    y = alu("exp", alu("add", alu("multiply", inp(0, "fp32"), inp(1, "fp32")), const(1.0, "fp32")))
    run_cpu([y], [x, x], x.shape)
    name = _misses(events)[-1]["name"]
    assert name.startswith("ts_fused_mul_add_exp_f32_2in_")
    info = explain_kernel(name)
    assert info["name"] == name and "ts_exp_f32" in info["source"] and info["backend"] == "c"
    assert explain_kernel(info["key"])["name"] == name


def _script(body):
    return textwrap.dedent(f"""
        import sys, json
        sys.path.insert(0, {ROOT!r})
        import numpy as np
        from tessera.fusion.ir import alu, const, inp
        from tessera.fusion.runtime import run_cpu, add_compile_listener
        ev = []
        add_compile_listener(ev.append)
        x = np.arange(12, dtype=np.float32).reshape(3, 4)
        y = alu("sqrt", alu("add", inp(0, "fp32"), const(2.5, "fp32")))
        r = run_cpu([y], [x], x.shape)[0]
        assert np.allclose(r, np.sqrt(x + 2.5))
        {body}
        print(json.dumps([e["kind"] for e in ev]))
    """)


def _run(tmp_path, body="", **env):
    e = dict(os.environ, TESSERA_CACHE_DIR=str(tmp_path), **env)
    out = subprocess.run([sys.executable, "-c", _script(body)], env=e, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_disk_cache_across_processes_and_corruption(tmp_path):
    assert _run(tmp_path) == '["compile"]'
    assert _run(tmp_path) == '["disk_hit"]'  # second process: loaded, no compile
    sos = list((tmp_path / "c").glob("*.so"))
    assert len(sos) == 1
    sos[0].write_bytes(b"not an ELF file")
    assert _run(tmp_path) == '["compile"]'  # corrupt entry is a miss, rebuilt
    assert _run(tmp_path) == '["disk_hit"]'


def test_keep_source(tmp_path):
    _run(tmp_path, TESSERA_KEEP_SOURCE="1")
    cs = list((tmp_path / "c").glob("*.c"))
    assert len(cs) == 1 and "#pragma omp declare simd" in cs[0].read_text()


def test_no_compiler_falls_back_to_numpy(monkeypatch):
    monkeypatch.setattr(compile_c, "compiler", lambda: None)
    monkeypatch.setattr(runtime, "_warned", False)
    x = np.random.rand(5, 6).astype(np.float32)
    y = alu("logaddexp", inp(0, "fp32"), alu("negative", inp(0, "fp32")))  # a new structure
    with pytest.warns(RuntimeWarning, match="no C compiler"):
        got = run_cpu([y], [x], x.shape)[0]
    np.testing.assert_allclose(got, np.logaddexp(x, -x), rtol=1e-6)


def test_interning():
    a = alu("add", inp(0, "fp32"), const(0.0, "fp32"))
    assert a is alu("add", inp(0, "fp32"), const(0.0, "fp32"))
    assert a is not alu("add", inp(0, "fp32"), const(-0.0, "fp32"))
    n1, n2 = const(float("nan"), "fp32"), const(float("nan"), "fp32")
    assert n1 is n2
    with pytest.raises(TypeError):
        alu("add", inp(0, "fp32"), inp(1, "fp16"))
    with pytest.raises(TypeError):
        alu("exp", inp(0, "int32"))
