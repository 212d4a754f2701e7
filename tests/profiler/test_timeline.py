"""Timeline views: summary table, Chrome trace, plot, HTML."""
import json

import matplotlib
import pytest

from tessera.profiler.timeline import DEVICE, Span, Timeline

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

matplotlib.use("Agg")


def _tl():
    return Timeline.from_events([
        {"name": "matmul", "cat": "op", "ts_ns": 1000, "dur_ns": 4000, "bytes": 8000},
        {"name": "relu.backward", "cat": "backward", "ts_ns": 6000, "dur_ns": 3000},
        {"name": "multiply", "cat": "op", "ts_ns": 6500, "dur_ns": 1000, "bytes": 100},
        {"name": "multiply", "cat": "op", "ts_ns": 7500, "dur_ns": 1000, "bytes": 100},
        {"name": "k", "cat": "fused", "ts_ns": 2000, "dur_ns": 500, "tid": DEVICE},
    ])


def test_self_time_subtracts_nested_spans():
    tl = _tl()
    bwd = tl.filter(cat="backward")[0]
    assert bwd.dur == 3000 and bwd.self_ns == 1000
    assert tl.spans[0].ts == 0  # shifted to start at 0


def test_summary_adds_up():
    rows = _tl().summary(lane=0, quiet=True)
    assert sum(r["share"] for r in rows) == pytest.approx(100.0)
    by = {r["name"]: r for r in rows}
    assert by["multiply"]["calls"] == 2
    assert by["multiply"]["total_ms"] == pytest.approx(0.002)
    assert by["multiply"]["mean_us"] == pytest.approx(1.0)
    assert by["matmul"]["gbps"] == pytest.approx(8000 / 4000)  # bytes per ns = GB/s
    assert by["relu.backward"]["gbps"] is None
    assert sum(r["total_ms"] for r in rows) == pytest.approx(0.007)
    # the device lane is the default when present
    assert [r["name"] for r in _tl().summary(quiet=True)] == ["k"]


def test_summary_prints_a_table(capsys):
    rows = _tl().summary(lane=0)
    out = capsys.readouterr().out
    assert "matmul" in out and "share" in out and "GB/s" in out
    assert str(rows) in out


def test_chrome_trace_fields(tmp_path):
    path = tmp_path / "trace.json"
    _tl().save(str(path))
    doc = json.loads(path.read_text())
    evs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert len(evs) == 5
    for e in evs:
        assert {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"} <= set(e)
        assert isinstance(e["ts"], (int, float)) and e["dur"] >= 0
    mm = [e for e in evs if e["name"] == "matmul"][0]
    assert mm["ts"] == 0 and mm["dur"] == pytest.approx(4.0)  # microseconds
    assert mm["args"]["bytes"] == 8000
    assert any(e["ph"] == "M" and e["name"] == "thread_name" for e in doc["traceEvents"])


def test_plot_and_html():
    from matplotlib.figure import Figure
    fig = _tl().plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["backward", "op", "fused (device)"]  # one row per (lane, category)
    html = _tl()._repr_html_()
    assert "<table>" in html and "matmul" in html


def test_span_objects_and_empty_timeline():
    tl = Timeline.from_events([Span("a", "op", 10, 5)])
    assert len(tl) == 1 and tl.duration_ns == 5
    empty = Timeline()
    assert empty.summary(quiet=True) == [] and empty.duration_ns == 0
    assert json.loads(json.dumps(empty.to_chrome()))["traceEvents"]
