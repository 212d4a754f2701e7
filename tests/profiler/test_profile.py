"""profile(): eager ops, fused groups, adjoints, copies and compiles on one timeline."""
import json

import numpy as np
import pytest

import tessera as ts
from tessera._config import STATE
from tessera.profiler import Recorder, Timeline, profile
from tessera.profiler.timeline import DEVICE, HOST
from helpers import host_spans

# Every test runs on each device; spans are read on the host lane (with CUDA events each
# span is also on the device lane).
pytestmark = pytest.mark.usefixtures("device")


def _ew_cat(t):
    """The span category of a small elementwise op on `t`'s device: "op" where it runs
    eagerly (the CPU, below its fusion size), "lazy" where it is deferred (CUDA)."""
    return "op" if t.size < t.device.backend.FUSE_MIN_SIZE else "lazy"


def test_profile_captures_eager_ops_and_backward():
    x = ts.asarray(np.random.rand(32, 32).astype(np.float32), requires_grad=True)
    with profile() as tl:
        y = ts.tanh(x @ x).sum()
        y.backward()
    assert "matmul" in {s.name for s in host_spans(tl, cat="op")}
    assert {"tanh", "sum"} <= {s.name for s in host_spans(tl, cat=_ew_cat(x))}
    bwd = {s.name for s in host_spans(tl, cat="backward")}
    assert {"matmul.backward", "tanh.backward", "sum.backward"} <= bwd
    mm = host_spans(tl, cat="op", name="matmul")[0]
    assert mm.dur > 0 and mm.nbytes == 3 * 32 * 32 * 4
    assert mm.args == {"shape": [32, 32], "dtype": "fp32"}
    assert STATE.event_sinks == []


@pytest.mark.cpu_only("host timing of eager ops (on CUDA the host span is the launch; the "
                      "device lane: test_device_lane_with_cuda_events)")
def test_op_span_times_the_compute():
    a = ts.asarray(np.random.rand(400, 400).astype(np.float32))
    with profile() as tl:
        for _ in range(3):
            a @ a
        ts.exp(ts.asarray([1.0]))
    mm = np.median([s.dur for s in tl.filter(name="matmul")])
    ex = tl.filter(name="exp")[0].dur
    assert mm > 5 * ex  # a 400^3 matmul is far longer than a one-element exp


def test_profile_captures_fused_groups_and_compiles():
    from tessera.fusion import compile_c
    x = ts.asarray(np.random.rand(50000).astype(np.float32))
    with profile() as tl:
        y = (ts.sin(x) * 3 + 1).numpy()
    assert y.shape == (50000,)
    lazy = {s.name for s in tl.filter(cat="lazy")}
    assert {"sin", "multiply", "add"} <= lazy
    fused = host_spans(tl, cat="fused")
    assert len(fused) == 1
    assert fused[0].args["ops"] == ["sin", "multiply", "add"]
    assert fused[0].nbytes == 2 * 50000 * 4  # one input, one output
    if compile_c.compiler() is not None:
        comp = [s for s in host_spans(tl) if s.cat in ("compile", "cache_hit", "disk_hit")]
        assert comp and fused[0].name == comp[0].name  # named after its kernel


def test_summary_and_trace_of_a_real_profile(tmp_path):
    x = ts.asarray(np.random.rand(64, 64).astype(np.float32), requires_grad=True)
    with profile() as tl:
        for _ in range(3):
            ((x @ x).relu() if hasattr(ts.Tensor, "relu") else ts.maximum(x @ x, 0)).sum().backward()
    rows = tl.summary(quiet=True)
    assert sum(r["share"] for r in rows) == pytest.approx(100.0)
    lane = DEVICE if DEVICE in tl.lanes else HOST  # the summary's default lane
    assert sum(r["calls"] for r in rows) == len([s for s in tl if s.tid == lane])
    mm = [r for r in rows if r["name"] == "matmul" and r["cat"] == "op"][0]
    assert mm["calls"] == 9 and mm["gbps"] > 0  # 3 forward + 2 per backward
    doc = json.loads(open(tl.save(str(tmp_path / "t.json"))).read())
    assert {"traceEvents"} <= set(doc)
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert len(xs) == len(tl)
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in xs)


def test_copy_and_inplace_spans():
    from tessera.ops.creation import to_device
    x = ts.ones((100, 100))
    with profile() as tl:
        to_device(x, ts.get_device("cpu"))
        x[0, 0] = 3.0
    cp = host_spans(tl, cat="copy")[0]
    assert cp.name == f"copy {x.device}->cpu" and cp.nbytes == 40000
    assert host_spans(tl, cat="inplace")[0].name == "setitem"


def test_sinks_removed_when_the_block_raises():
    with pytest.raises(ZeroDivisionError):
        with profile() as tl:
            ts.exp(ts.asarray([1.0]))
            1 / 0
    assert STATE.event_sinks == [] and len(host_spans(tl, name="exp")) == 1


def test_recorder_for_other_runners():
    x = ts.asarray([1.0, 2.0])
    rec = Recorder().start()
    x * 3
    tl = rec.stop()
    assert isinstance(tl, Timeline) and [s.name for s in host_spans(tl, cat=_ew_cat(x))] == \
        ["multiply"]
    with pytest.raises(RuntimeError):
        r = Recorder().start()
        try:
            r.start()
        finally:
            r.stop()
    assert STATE.event_sinks == []


@pytest.mark.gpu
def test_device_lane_with_cuda_events():
    x = ts.ones((512, 512), device="cuda")
    with profile(device_timing=True) as tl:
        for _ in range(3):
            x @ x
    dev = [s for s in tl if s.tid == 1]
    assert dev and all(s.dur > 0 for s in dev if s.name == "matmul")
    assert tl.summary(quiet=True)[0]["name"] == "matmul"


def test_deferred_casts_and_reductions_are_lazy_spans():
    x = ts.asarray(np.random.rand(300, 256).astype(np.float32))
    with profile() as tl:
        y = ts.sum((x * 2.0).astype("bf16"), axis=0).astype("fp32")
        y.numpy()
    assert [s.name for s in tl.filter(cat="lazy")] == ["multiply", "cast", "sum", "cast"]
    assert tl.filter(cat="fused")


def test_spans_are_built_on_first_read():
    x = ts.ones((4,))
    with profile() as tl:
        ts.exp(x) + 1.0
    assert tl._build is not None  # leaving the block built nothing
    n = len(tl)
    assert [s.name for s in host_spans(tl, cat=_ew_cat(x))] == ["exp", "add"]
    assert tl._build is None and n == len(tl.spans) == len(tl)
