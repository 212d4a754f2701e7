"""Typed global switches, in one place.

Plain module attributes on one object rather than strings scattered across the
package: the hot path reads `STATE.grad_enabled` (an attribute load, ~20 ns).
Context managers elsewhere (`no_grad`, `fusion.mode`, `check_numerics`, `autocast`)
set and restore these fields.
"""
import os


class _State:
    __slots__ = ("grad_enabled", "fusion_mode", "check_numerics", "check_numerics_opts",
                 "autocast", "tile_hint", "debug", "event_sinks", "capture")

    def __init__(self):
        self.grad_enabled = True
        self.fusion_mode = os.environ.get("TESSERA_FUSION", "default")  # none|default|aggressive
        self.check_numerics = False
        self.check_numerics_opts = None
        self.autocast = None            # None or the active autocast policy
        self.tile_hint = None           # None or the active schedule hint
        self.debug = int(os.environ.get("TESSERA_DEBUG", "0") or 0)
        self.event_sinks = []           # profiler / capture listeners (see profiler.events)
        self.capture = None             # the graph recorder when capturing


STATE = _State()
