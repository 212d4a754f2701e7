"""IR dumps: each level of each captured program parses with mlir-opt, ids link the
three levels, kernels have sources, custom ops print in the seed's form."""
import re

import numpy as np
import pytest

import tessera as ts
from tessera.graph import capture
from graph_programs import (RNG, parse_mlir, ew_chain, gather, mlp_params, mm, rand, reductions, softmax,
                            train_step)
from helpers import DEVICES

# Every test runs on each device. `device` is module-scoped here so that the programs are
# captured once per device (and not at import, on whatever the process's default is).
pytestmark = pytest.mark.usefixtures("device")


@pytest.fixture(scope="module", params=DEVICES)
def device(request):
    return request.param


def _programs():
    params = mlp_params(np.random.default_rng(3))
    return {
        "ew_small": (ew_chain, (rand(4, 8), rand(4, 8))),
        "ew_fused": (ew_chain, (rand(300, 128), rand(300, 128))),
        "reductions": (reductions, (rand(400, 96),)),
        "matmul": (lambda a, b: mm(a, b.T), (rand(5, 7), rand(5, 7))),
        "softmax": (softmax, (rand(4, 10),)),
        "gather": (gather, (rand(10, 3), ts.asarray(RNG.integers(0, 10, size=4)))),
        "train": (lambda x, y: train_step(params, x, y), (rand(16, 32), rand(16, 10))),
        "mixed": (lambda x: (ts.astype(x, "bf16") * 2).sum() + (x > 0).sum(),
                  (rand(256, 256),)),
    }


PROGRAMS = ("ew_small", "ew_fused", "reductions", "matmul", "softmax", "gather", "train", "mixed")


@pytest.fixture(scope="module")
def graphs(device):
    prev = ts.default_device()
    ts.set_default_device(device)  # module scope: before the per-test pin of the default
    try:
        programs = _programs()
        assert sorted(programs) == sorted(PROGRAMS)
        return {k: capture(fn, *args) for k, (fn, args) in programs.items()}
    finally:
        ts.set_default_device(prev)


def ids(text, key="tessera.id"):
    return [int(m) for m in re.findall(re.escape(key) + r" = (\d+) : i64", text)]


def id_lists(text):
    out = []
    for m in re.findall(r"tessera\.ids = \[([^\]]*)\]", text):
        out += [int(v) for v in re.findall(r"(\d+) : i64", m)]
    return out


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_every_level_parses(graphs, name):
    g = graphs[name]
    for level in ("graph", "schedule", "tile"):
        parse_mlir(g.dump_ir(level, print_=False))
    both = g.dump_ir(print_=False)
    for level in ("Graph", "Schedule", "Tile"):
        assert f"{level} IR" in both


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_ids_link_the_three_levels(graphs, name):
    g = graphs[name]
    graph_ids = ids(g.dump_ir("graph", print_=False))
    assert graph_ids == list(range(len(g.ops)))  # one id per op, in order
    sched = g.dump_ir("schedule", print_=False)
    assert set(ids(sched)) == set(graph_ids)      # computed or listed as elided
    tile_ids = id_lists(g.dump_ir("tile", print_=False))
    computed = {i for st in g.steps for i in st.ids}
    assert set(tile_ids) == computed and computed <= set(graph_ids)
    elided = set(ids("\n".join(ln for ln in sched.splitlines() if "tessera.elided" in ln)))
    assert computed | elided == set(graph_ids)


def test_graph_ir_has_types_locations_and_attributes(graphs):
    text = graphs["reductions"].dump_ir("graph", print_=False)
    assert "tensor<400x96xf32>" in text
    assert re.search(r'loc\(".*graph_programs\.py":\d+:0\)', text)
    assert "axes = [1 : i64]" in text
    text = graphs["mixed"].dump_ir("graph", print_=False)
    assert "bf16" in text and "i1" in text


def test_schedule_ir_has_liveness_groups_and_modes(graphs):
    text = graphs["train"].dump_ir("schedule", print_=False)
    assert "tessera.alloc" in text and "tessera.free" in text
    assert 'fusion_mode = "default"' in text and "peak_bytes" in text
    fused = graphs["ew_fused"].dump_ir("schedule", print_=False)
    assert '"tessera.group"() ({' in fused and "tile_sizes" in fused


def test_schedule_hint_tile_sizes_appear():
    from tessera import schedule

    @schedule.hint(fusion="aggressive", tile_sizes=[128, 128, 64])
    def matmul_tiled(a, b):
        return ts.matmul(a, b)
    g = capture(matmul_tiled, rand(8, 8), rand(8, 8))
    text = g.dump_ir("schedule", print_=False)
    assert "tile_sizes = [128 : i64, 128 : i64, 64 : i64]" in text
    assert 'fusion_mode = "aggressive"' in text


def test_tile_ir_and_kernel_sources(graphs):
    g = graphs["ew_fused"]
    text = g.dump_ir("tile", print_=False)
    names = re.findall(r'kernel = "([^"]+)"', text)
    assert names
    for n in set(names):
        src = g.kernel_source(n)
        assert isinstance(src, str) and src.strip()
    k = [k for k in g.kernels() if k["kind"] == "fused"][0]
    assert "tessera.parallel_for" in text
    # the C kernel's launch is a thread count, a CUDA kernel's a grid of blocks
    assert "threads" in k["launch"] if k["kernel_backend"] == "c" else \
        {"grid", "block"} <= k["launch"].keys()
    if k["kernel_backend"] == "c":
        assert k["kernel_name"] in g.kernel_source(k["kernel_name"])  # the C function
    host = graphs["matmul"]
    assert "def fwd" in host.kernel_source("host.matmul")
    with pytest.raises(KeyError, match="no kernel named"):
        host.kernel_source("nope")


def test_custom_op_prints_in_seed_form():
    from tessera.ops._dispatch import apply_op

    def spectral_filter(x):
        xp = x.device.backend.xp
        return apply_op("custom.custom_spectral_filter", (x,),
                        lambda b: xp.real(xp.fft.ifft(xp.fft.fft(b) * 0.5)).astype(b.dtype),
                        x.dtype, x.device)
    g = capture(spectral_filter, rand(1024))
    text = g.dump_ir("graph", print_=False)
    assert re.search(r'"tessera\.op"\(%arg0\) \{name = "custom_spectral_filter", '
                     r'tessera\.exec = "op", tessera\.id = 0 : i64\} : '
                     r'\(tensor<1024xf32>\) -> tensor<1024xf32>', text)
    parse_mlir(text)


def test_dump_ir_prints_and_rejects_bad_level(graphs, capsys):
    g = graphs["ew_small"]
    text = g.dump_ir()
    assert capsys.readouterr().out == text
    with pytest.raises(ValueError, match="level"):
        g.dump_ir("loops")


def test_mlir_printer_escapes_and_types():
    from tessera.graph import mlir
    assert mlir.string('a"b\\c\n') == '"a\\"b\\\\c\\0A"'
    assert mlir.tensor_type((), "fp32") == "tensor<f32>"
    assert mlir.tensor_type((2, 3), "bool") == "tensor<2x3xi1>"
    assert mlir.attr(1e-30) == "1.0e-30 : f64"
    assert mlir.attr(float("inf")) == "0x7FF0000000000000 : f64"
    assert mlir.loc(("/x/a b.py", 12, "f")) == 'loc("/x/a b.py":12:0)'


def test_deferred_casts_and_reductions_carry_their_own_lines():
    # lazy casts and reductions send op events: their loc is the line that made them,
    # not the line that later read them
    import sys

    def f(x):
        line = sys._getframe().f_lineno
        h = (x * 2.0).astype("bf16")
        s = ts.sum(h * 3.0, axis=1)
        r = s.astype("fp32") + 1.0
        return r, line
    x = rand(300, 256)
    g = capture(lambda x: f(x)[0], x)
    line = f(x)[1]
    text = g.dump_ir("graph", print_=False)
    locs = {}
    for m in re.finditer(r'"tessera\.(\w+)"\(.*\{([^}]*)\}.* loc\("[^"]*":(\d+):0\)', text):
        locs.setdefault(m.group(1), []).append(int(m.group(3)))
    assert locs["cast"] == [line + 1, line + 3]
    assert locs["sum"] == [line + 2]
    assert 'to = "bf16"' in text and "axes = [1 : i64]" in text
    assert [o.kind for o in g.ops if o.name in ("cast", "sum")] == ["lazy"] * 3
    parse_mlir(text)


def _fused_kernel_sources(x):
    g = capture(lambda x: ts.exp(x * 2.0) + 1.0, x)
    ks = [k for k in g.kernels() if k["kind"] == "fused"]
    assert ks and all("error" not in k for k in ks), ks
    return [(k, g.kernel_source(k["kernel_name"])) for k in ks]


@pytest.mark.cpu_only("a cuda-typed stand-in device on the NumPy backend: the CUDA source is rendered")
def test_cuda_fused_kernel_source_is_text():
    # kernel_source returned render_cuda_ir's (source, name) tuple (TRIAGE 2026-12-04 A14)
    from helpers import cuda_typed_cpu_device
    x = ts.asarray(np.linspace(0, 1, 40_000, dtype=np.float32), device=cuda_typed_cpu_device())
    for k, src in _fused_kernel_sources(x):
        assert k["kernel_backend"] == "cuda" and isinstance(src, str)
        assert f"__global__ void __launch_bounds__(256) {k['kernel_name']}(" in src


def test_fused_kernel_source_is_text_on_device(device):
    x = ts.asarray(np.linspace(0, 1, 40_000, dtype=np.float32), device=device)
    for k, src in _fused_kernel_sources(x):
        assert isinstance(src, str) and k["kernel_name"] in src
