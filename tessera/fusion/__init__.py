"""Lazy elementwise fusion: chains of elementwise ops (and the reductions that
consume them) are deferred and run as one generated kernel.

Public controls:
- `mode("none" | "default" | "aggressive")`: a context manager, and a global
  setting when called as `set_mode(...)`.
- `explain()`: for the last realizations, each group's ops, why the group ended
  where it did (the break reason and the user's source line), and its kernel.
- `realize(*tensors)`: compute pending tensors now (one kernel per group).

Internals: `lazy` (the buffer), `execute` (group -> IR -> runner), `ir`, `lower`,
`render_*`, `compile_c`, `runtime` (code generation and compiled-kernel caches).
"""
from __future__ import annotations

import functools

from .._config import STATE
from .lazy import _explain, flush_pending, realize

MODES = ("none", "default", "aggressive")


def _check(m):
    if m not in MODES:
        raise ValueError(f"[fusion.mode] unknown mode {m!r}; accepted: {', '.join(MODES)}")
    return m


class mode:
    """Set the fusion mode inside a `with` block (or a decorated function).
    Pending groups are realized on entry and exit, so the mode applies to whole
    groups."""

    def __init__(self, m):
        self.m = _check(m)
        self._prev = []

    def __enter__(self):
        flush_pending("fusion mode change")
        self._prev.append(STATE.fusion_mode)
        STATE.fusion_mode = self.m
        return self

    def __exit__(self, *exc):
        flush_pending("fusion mode change")
        STATE.fusion_mode = self._prev.pop()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            with mode(self.m):
                return fn(*a, **k)
        return wrapper


def set_mode(m):
    """Set the global fusion mode."""
    flush_pending("fusion mode change")
    STATE.fusion_mode = _check(m)


def get_mode():
    return STATE.fusion_mode


def explain(enable=True, print_=True):
    """Describe the last realized groups: ops, break reason, source line, kernel.

    Recording starts the first time `explain` is called (it costs a frame walk
    per lazy op); the first call therefore returns what was recorded so far,
    possibly nothing. Returns the records as a list of dicts."""
    from .._srcloc import fmt_site
    was = _explain.enabled
    _explain.enabled = enable
    recs = list(_explain.records)
    if print_:
        if not was:
            print("fusion.explain: recording enabled; run your code, then call explain() again")
        for i, r in enumerate(recs):
            print(f"group {i}: {len(r['ops'])} ops [{', '.join(r['ops'])}] -> "
                  f"{r['outputs']} output(s) shape {r['shape']}")
            print(f"    ended by: {r['reason']} at {fmt_site(r['site'])}")
            print(f"    kernel: {r['kernel']}")
    return recs


def clear_explain():
    _explain.records.clear()
