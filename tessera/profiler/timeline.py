"""`Timeline`: what ran, when and for how long, and the views of it (a summary
table, a Chrome trace, a matplotlib plot, an inline HTML table in Jupyter).

A timeline is a list of `Span`s (name, category, start and duration in
nanoseconds, lane, bytes moved, args). Spans nest (an adjoint contains the ops it
ran, a fused group the compile it triggered); every table reports *self* time
(a span's duration minus that of the spans inside it on the same lane), so the
shares of one lane add up to 100%.

Anyone who times work themselves (graph replay, a benchmark) builds one with
`Timeline.from_events([...])` from dicts {name, cat, ts_ns, dur_ns, [tid, bytes,
args]}; `tessera.profiler.Recorder` builds one from the event stream.

    >>> tl = Timeline.from_events([
    ...     {"name": "matmul", "cat": "op", "ts_ns": 0, "dur_ns": 3000, "bytes": 3_000_000},
    ...     {"name": "relu", "cat": "op", "ts_ns": 3000, "dur_ns": 1000}])
    >>> [(r["name"], round(r["share"])) for r in tl.summary(quiet=True)]
    [('matmul', 75), ('relu', 25)]
"""
from __future__ import annotations

import json
import os
import sys

# Lanes ("tid" in the Chrome trace): host work, and device work timed with CUDA events.
HOST, DEVICE = 0, 1
_LANE_NAMES = {HOST: "host (tessera ops)", DEVICE: "device (CUDA events)"}
_COLORS = {"op": "#4c72b0", "lazy": "#c7d3e6", "fused": "#dd8452", "backward": "#8172b3",
           "copy": "#55a868", "compile": "#c44e52", "cache_hit": "#e5aeb0",
           "disk_hit": "#e5aeb0", "inplace": "#937860", "replay": "#da8bc3"}


class Span:
    """One timed piece of work. `ts`/`dur` are nanoseconds from the timeline's start;
    `self_ns` is filled in by the timeline (duration minus nested spans)."""
    __slots__ = ("name", "cat", "ts", "dur", "tid", "nbytes", "args", "self_ns")

    def __init__(self, name, cat, ts, dur, tid=HOST, nbytes=None, args=None):
        # the profiler builds one per op: ints (perf_counter_ns) pass through untouched
        if type(ts) is not int:
            ts = int(ts)
        if type(dur) is not int:
            dur = int(dur)
        if dur < 0:
            dur = 0
        self.name, self.cat, self.ts, self.dur = name, cat, ts, dur
        self.tid, self.nbytes, self.args, self.self_ns = tid, nbytes, args, dur

    def __repr__(self):
        return f"<Span {self.cat}:{self.name} +{self.ts / 1e3:.1f}us {self.dur / 1e3:.1f}us>"


def _nest(spans):
    """Set each span's self time: its duration minus its direct children's."""
    by_lane = {}
    for s in spans:
        s.self_ns = s.dur
        by_lane.setdefault(s.tid, []).append(s)
    for lane in by_lane.values():
        lane.sort(key=lambda s: (s.ts, -s.dur))
        stack = []
        for s in lane:
            while stack and stack[-1].ts + stack[-1].dur <= s.ts and s.dur + stack[-1].dur > 0:
                stack.pop()
            if stack:
                parent = stack[-1]
                inside = min(s.ts + s.dur, parent.ts + parent.dur) - s.ts
                parent.self_ns -= max(inside, 0)
            stack.append(s)
    for s in spans:
        s.self_ns = max(s.self_ns, 0)


class Summary(list):
    """The rows of `Timeline.summary()` (dicts), printable as a table."""

    def __str__(self):
        head = f"{'name':<44} {'cat':<9} {'calls':>6} {'total ms':>9} {'mean us':>9} " \
               f"{'share':>6} {'GB/s':>7}"
        lines = [head, "-" * len(head)]
        for r in self:
            bw = f"{r['gbps']:7.2f}" if r["gbps"] is not None else "      -"
            name = r["name"] if len(r["name"]) <= 44 else r["name"][:41] + "..."
            lines.append(f"{name:<44} {r['cat']:<9} {r['calls']:>6} {r['total_ms']:>9.3f} "
                         f"{r['mean_us']:>9.1f} {r['share']:>5.1f}% {bw}")
        total = sum(r["total_ms"] for r in self)
        lines.append("-" * len(head))
        lines.append(f"{'total':<44} {'':<9} {sum(r['calls'] for r in self):>6} {total:>9.3f}")
        return "\n".join(lines)

    def _repr_html_(self):
        from html import escape
        cells = []
        for r in self:
            bw = "" if r["gbps"] is None else f"{r['gbps']:.2f}"
            cells.append(f"<tr><td>{escape(r['name'])}</td><td>{r['cat']}</td>"
                         f"<td>{r['calls']}</td><td>{r['total_ms']:.3f}</td>"
                         f"<td>{r['mean_us']:.1f}</td><td>{r['share']:.1f}%</td><td>{bw}</td></tr>")
        cells = "".join(cells)
        return ("<table><thead><tr><th>name</th><th>cat</th><th>calls</th><th>total ms</th>"
                "<th>mean us</th><th>share</th><th>GB/s</th></tr></thead>"
                f"<tbody>{cells}</tbody></table>")


class Timeline:
    """Spans recorded by `tessera.profiler.profile()` (or built with `from_events`)."""

    def __init__(self, spans=(), meta=None):
        self.spans = spans
        self.meta = dict(meta or {})
        self.result = None  # what the traced run returned (Graph.trace_execution)

    # Self times are computed on first access, not when recording stops: leaving a
    # `profile()` block then costs no sort, and a timeline nobody reads costs nothing.
    @property
    def spans(self):
        if self._dirty:
            if self._build is not None:
                self._spans, self._build = self._build(), None
            _nest(self._spans)
            self._dirty = False
        return self._spans

    @spans.setter
    def spans(self, spans):
        self._spans = list(spans)
        self._build = None
        self._dirty = True

    def _defer(self, build, n):
        """Spans made by `build()` when first read (the profiler's raw records; `n`
        of them): leaving a `profile()` block then builds no Span objects."""
        self._spans, self._build, self._n, self._dirty = [], build, n, True

    @classmethod
    def from_events(cls, events, meta=None):
        """A timeline from `Span`s or dicts {name, cat, ts_ns, dur_ns} with optional
        tid (0 host, 1 device), bytes and args. Times are nanoseconds; they are
        shifted so that the earliest starts at 0."""
        spans = []
        for e in events:
            if isinstance(e, Span):
                spans.append(e)
            else:
                spans.append(Span(e["name"], e.get("cat", "op"), e["ts_ns"], e["dur_ns"],
                                  e.get("tid", HOST), e.get("bytes"), e.get("args")))
        if spans:
            t0 = min(s.ts for s in spans)
            for s in spans:
                s.ts -= t0
        return cls(spans, meta)

    def __len__(self):
        return self._n if self._build is not None else len(self._spans)

    def __iter__(self):
        return iter(self.spans)

    def __repr__(self):
        cats = {}
        for s in self.spans:
            cats[s.cat] = cats.get(s.cat, 0) + 1
        return f"<Timeline {len(self.spans)} spans {cats}>"

    def filter(self, cat=None, name=None):
        """The spans of a category and/or name."""
        return [s for s in self.spans if (cat is None or s.cat == cat)
                and (name is None or s.name == name)]

    @property
    def lanes(self):
        return sorted({s.tid for s in self.spans})

    # -- the table ---------------------------------------------------------------
    def summary(self, lane=None, sort="total", quiet=False, file=None):
        """One row per (name, category): calls, total and mean self time, share of
        the lane's time, achieved bandwidth (bytes in + out / self time) where
        the bytes are known. `lane` defaults to the device lane when CUDA events
        were recorded, else the host lane. Prints the table unless `quiet`."""
        if lane is None:
            lane = DEVICE if DEVICE in self.lanes else HOST
        groups = {}
        for s in self.spans:
            if s.tid != lane:
                continue
            g = groups.get((s.name, s.cat))
            if g is None:
                g = groups[(s.name, s.cat)] = [0, 0, 0, True]
            g[0] += 1
            g[1] += s.self_ns
            if s.nbytes is None:
                g[3] = False
            else:
                g[2] += s.nbytes
        grand = sum(g[1] for g in groups.values()) or 1
        rows = Summary()
        for (name, cat), (calls, tot, nb, known) in groups.items():
            gbps = nb / tot if known and tot > 0 and nb else None  # bytes/ns == GB/s
            rows.append({"name": name, "cat": cat, "calls": calls, "total_ms": tot / 1e6,
                         "mean_us": tot / calls / 1e3, "share": 100.0 * tot / grand,
                         "bytes": nb if known else None, "gbps": gbps})
        key = {"total": lambda r: -r["total_ms"], "calls": lambda r: -r["calls"],
               "name": lambda r: r["name"]}[sort]
        rows.sort(key=key)
        if not quiet:
            print(rows, file=file or sys.stdout)
        return rows

    def _repr_html_(self):
        parts = [f"<p>tessera timeline: {len(self.spans)} spans, "
                 f"{self.duration_ns / 1e6:.3f} ms</p>"]
        for lane in sorted(self.lanes, reverse=True):  # device first, when recorded
            if len(self.lanes) > 1:
                parts.append(f"<p>{_LANE_NAMES.get(lane, lane)}</p>")
            parts.append(self.summary(lane=lane, quiet=True)._repr_html_())
        return "".join(parts)

    @property
    def duration_ns(self):
        if not self.spans:
            return 0
        return max(s.ts + s.dur for s in self.spans) - min(s.ts for s in self.spans)

    # -- Chrome trace ------------------------------------------------------------
    def to_chrome(self):
        """The Chrome Trace Event format as a dict (complete "X" events, microseconds)."""
        pid = self.meta.get("pid", os.getpid())
        out = [{"name": "process_name", "ph": "M", "pid": pid, "tid": HOST,
                "args": {"name": "tessera"}}]
        for lane in self.lanes:
            out.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": lane,
                        "args": {"name": _LANE_NAMES.get(lane, f"lane {lane}")}})
        for s in self.spans:
            args = dict(s.args) if s.args else {}
            if s.nbytes is not None:
                args["bytes"] = s.nbytes
            args["self_us"] = s.self_ns / 1e3
            out.append({"name": s.name, "cat": s.cat, "ph": "X", "ts": s.ts / 1e3,
                        "dur": s.dur / 1e3, "pid": pid, "tid": s.tid,
                        "args": _jsonable(args)})
        return {"traceEvents": out, "displayTimeUnit": "ms",
                "otherData": _jsonable(self.meta)}

    def save(self, path):
        """Write a Chrome trace (opens in https://ui.perfetto.dev or chrome://tracing)."""
        with open(path, "w") as f:
            json.dump(self.to_chrome(), f)
        return path

    # -- plot --------------------------------------------------------------------
    def plot(self, ax=None, max_spans=20000):
        """Draw the spans, one row per category, with matplotlib; returns the figure.
        Uses `matplotlib.figure.Figure` directly, so no GUI backend is needed."""
        if ax is None:
            from matplotlib.figure import Figure
            fig = Figure(figsize=(12, 4))
            ax = fig.add_subplot(111)
        else:
            fig = ax.figure
        rows = {}
        for s in self.spans[:max_spans]:
            rows.setdefault((s.tid, s.cat), []).append((s.ts / 1e6, max(s.dur / 1e6, 1e-6)))
        labels = []
        for i, ((tid, cat), bars) in enumerate(sorted(rows.items())):
            ax.broken_barh(bars, (i - 0.4, 0.8), facecolors=_COLORS.get(cat, "#999999"))
            labels.append(f"{cat}" + (" (device)" if tid == DEVICE else ""))
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels)
        ax.set_xlabel("time (ms)")
        ax.set_title(f"tessera timeline: {len(self.spans)} spans, "
                     f"{self.duration_ns / 1e6:.2f} ms")
        return fig


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)
