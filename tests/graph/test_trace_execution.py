"""`Graph.trace_execution()`: a Timeline of one replay (every step named as
`g.kernels()` names it, compiles and cache hits, one enclosing replay span), and
the seed's section 7.5 run as written."""
import json

import numpy as np
import pytest

import tessera as ts
from tessera.graph import CaptureError, capture
from tessera.profiler import Timeline
from tessera.profiler.timeline import HOST
from graph_programs import ew_chain, mlp_params, parse_mlir, rand, reductions, train_step
from helpers import host_spans

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def _steps(tl):
    """The replay's steps on the host lane (with CUDA events each is also on the device's)."""
    return sorted((s for s in host_spans(tl) if s.cat not in ("replay", "compile", "cache_hit",
                                                              "disk_hit")),
                  key=lambda s: s.args["step"])


@pytest.mark.parametrize("prog", ["train", "fused", "reductions"])
def test_steps_match_kernels_with_positive_durations(prog):
    if prog == "train":
        params = mlp_params(np.random.default_rng(0))
        g = capture(lambda x, y: train_step(params, x, y), rand(16, 32), rand(16, 10))
    elif prog == "fused":
        g = capture(ew_chain, rand(300, 128), rand(300, 128))
    else:
        g = capture(reductions, rand(400, 96))
    tl = g.trace_execution()
    assert isinstance(tl, Timeline)
    steps = _steps(tl)
    ks = g.kernels()
    assert [s.name for s in steps] == [k["kernel_name"] for k in ks]
    assert [s.args["step"] for s in steps] == list(range(len(ks)))
    assert all(s.dur > 0 for s in steps)
    assert {s.cat for s in steps} <= {"op", "fused", "inplace", "copy"}
    (whole,) = host_spans(tl, cat="replay")
    assert all(whole.ts <= s.ts and s.ts + s.dur <= whole.ts + whole.dur for s in steps)
    rows = tl.summary(quiet=True)
    assert sum(r["share"] for r in rows) == pytest.approx(100.0, abs=1e-6)
    assert tl.meta["steps"] == len(ks)
    assert tl.meta["device_timing"] is ts.cuda_is_available()  # the default: where a GPU is
    if prog != "train":  # steps that read/write arrays report their bytes
        assert all(s.nbytes and s.nbytes > 0 for s in steps)


def test_fused_replay_reports_its_kernel_cache_hit_and_result():
    x, y = rand(300, 128), rand(300, 128)
    g = capture(ew_chain, x, y)
    x2, y2 = rand(300, 128), rand(300, 128)
    tl = g.trace_execution(x2, y2)
    (fused,) = host_spans(tl, cat="fused")
    hits = host_spans(tl, cat="cache_hit") + host_spans(tl, cat="compile")
    assert hits and all(h.name == fused.name for h in hits)
    np.testing.assert_array_equal(tl.result.numpy(), ew_chain(x2, y2).numpy())
    with pytest.raises(ts.ShapeError, match="captured with shape"):
        g.trace_execution(rand(3, 128), y2)


def test_chrome_trace_has_the_required_fields(tmp_path):
    g = capture(lambda x: ts.softmax(x * 2.0, axis=-1).sum(), rand(8, 16))
    tl = g.trace_execution()
    path = tl.save(str(tmp_path / "trace.json"))
    doc = json.load(open(path))
    evs = doc["traceEvents"]
    xs = [e for e in evs if e["ph"] == "X"]
    assert len(xs) == len(tl.spans)
    for e in xs:
        assert {"name", "cat", "ph", "ts", "dur", "pid", "tid"} <= e.keys()
        assert isinstance(e["ts"], (int, float)) and e["dur"] >= 0
    assert [e["name"] for e in sorted(xs, key=lambda e: e["ts"])
            if e["cat"] in ("op", "fused") and e["tid"] == HOST] == \
        [k["kernel_name"] for k in g.kernels()]  # x * 2.0 is a fused group where lazy (CUDA)
    assert any(e["ph"] == "M" and e["name"] == "thread_name" for e in evs)
    assert doc["otherData"]["graph"] == "<lambda>"


def test_plot_and_html():
    g = capture(lambda x: ts.exp(x) + 1, rand(4, 4))
    tl = g.trace_execution()
    fig = tl.plot()
    assert fig.axes and "spans" in fig.axes[0].get_title()
    assert "<table>" in tl._repr_html_() and "replay" in tl._repr_html_()


def test_without_args_replays_the_capture_inputs_except_for_trace_graphs():
    x = rand(3)
    g = capture(lambda x: x * 2.0, x)
    np.testing.assert_array_equal(g.trace_execution().result.numpy(), x.numpy() * 2)

    @ts.graph.trace
    def f(x):
        return x + 1.0
    f(x)
    (tg,) = f.graphs.values()
    with pytest.raises(CaptureError, match="pass inputs"):
        tg.trace_execution()
    assert tg.trace_execution(x).result.tolist() == (x.numpy() + 1).tolist()


def test_replay_side_effects_happen_once_per_trace():
    w = ts.asarray([1.0, 2.0])

    def f(x):
        with ts.no_grad():
            w.__isub__(x)
        return w * 1.0
    x = ts.asarray([0.5, 0.5])
    g = capture(f, x)  # w: [0.5, 1.5]
    tl = g.trace_execution()  # w: [0, 1]
    assert w.tolist() == [0.0, 1.0] and tl.result.tolist() == [0.0, 1.0]
    assert len(host_spans(tl, cat="inplace")) == 1


@pytest.mark.gpu
def test_device_lane_from_cuda_events():
    x = ts.asarray(np.ones((256, 256), np.float32), device="cuda")
    g = capture(lambda x: ts.exp(x) @ x, x)
    tl = g.trace_execution()
    assert tl.meta["device_timing"] and 1 in tl.lanes
    dev = [s for s in tl.spans if s.tid == 1 and s.cat != "replay"]
    assert [s.name for s in sorted(dev, key=lambda s: s.ts)] == \
        [k["kernel_name"] for k in g.kernels()]


# -- the seed, chapter 7, section 7.5, as written ----------------------------------------
def test_seed_section_7_5():
    import tessera
    from tessera import op

    w = tessera.asarray(np.random.default_rng(5).standard_normal((16, 8)).astype(np.float32),
                        requires_grad=True)

    def fn(x):
        loss = tessera.softmax(x @ w, axis=-1).sum() + tessera.tanh(x).mean()
        loss.backward()
        return loss
    x = rand(4, 16)

    graph = tessera.graph.capture(fn, x)
    text = graph.dump_ir()  # Graph IR, Schedule IR, Tile IR
    for level in ("Graph IR", "Schedule IR", "Tile IR"):
        assert f"----- {level} -----" in text
    parse_mlir(text)
    for level in ("graph", "schedule", "tile"):
        parse_mlir(graph.dump_ir(level, print_=False))
    timeline = graph.trace_execution()
    assert isinstance(timeline, tessera.profiler.Timeline) and len(timeline.filter(cat="op"))
    timeline.summary()
    assert op.check_numerics(x) is x
    with pytest.raises(tessera.NumericsError, match="NaN"):
        op.check_numerics(tessera.log(x - 100.0))
