"""The event subscription API: one place that manages STATE.event_sinks."""
import numpy as np
import pytest

import tessera as ts
from tessera._config import STATE
from tessera.profiler import events

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def test_subscribe_remove_and_context_manager():
    before = list(STATE.event_sinks)
    seen = []
    h = events.subscribe(lambda k, p: seen.append(k))
    assert len(STATE.event_sinks) == len(before) + 1
    ts.asarray([1.0, 2.0]) * 2
    h.remove()
    h.remove()  # twice is a no-op
    assert STATE.event_sinks == before
    assert seen == ["op_start", "op"]
    with events.subscribe(lambda k, p: seen.append(k), kinds=("op",)) as h2:
        ts.exp(ts.asarray([1.0]))
    assert not h2.active and STATE.event_sinks == before
    assert seen[-1] == "op" and seen.count("op") == 2


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown event kinds"):
        events.subscribe(lambda k, p: None, kinds=("opp",))
    assert STATE.event_sinks == []


def test_unsubscribe_during_delivery_is_safe():
    calls = []

    def once(kind, payload):
        calls.append("once")
        h1.remove()

    h1 = events.subscribe(once)
    with events.subscribe(lambda k, p: calls.append("other")):
        ts.asarray([1.0]) + 1
    assert calls.count("once") == 1 and calls.count("other") == 2  # op_start, op


def test_payloads_of_each_kind():
    got = {}
    x = ts.asarray(np.ones(3, np.float32), requires_grad=True)
    with events.subscribe(lambda k, p: got.setdefault(k, p)):
        y = (ts.exp(x) * 2).sum()
        y.backward()
        z = ts.asarray([1.0, 2.0])
        z[0] = 5.0
    assert got["op_start"] == "exp"
    name, inputs, out = got["op"][:3]
    assert name == "exp" and inputs[0] is x and out.shape == (3,)
    assert got["tape"].name == "exp"
    assert got["backward_start"] is got["backward"][0]
    assert got["inplace"][0] == "setitem"


def test_fused_events_and_compile_bridge():
    from tessera.fusion import compile_c
    kinds = []
    with events.subscribe(lambda k, p: kinds.append((k, p))):
        assert events._on_compile in compile_c._listeners
        x = ts.asarray(np.random.rand(40000).astype(np.float32))
        (ts.exp(x) + 1).numpy()
    assert events._on_compile not in compile_c._listeners
    names = [k for k, _ in kinds]
    assert "fused_start" in names and "fused" in names
    start = dict(kinds)["fused_start"]
    assert {"outputs", "order", "shape", "device", "reduce"} <= set(start)
    if compile_c.compiler() is not None:
        comp = [p for k, p in kinds if k == "compile"]
        assert comp and comp[0]["kind"] in ("compile", "cache_hit", "disk_hit")
