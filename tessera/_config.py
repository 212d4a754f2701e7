"""Typed global switches, in one place.

Plain module attributes on one object rather than strings scattered across the
package: the hot path reads `STATE.grad_enabled` (an attribute load, ~20 ns).
Context managers elsewhere (`no_grad`, `fusion.mode`, `check_numerics`, `autocast`)
set and restore these fields.
"""
import os

FUSION_MODES = ("none", "default", "aggressive")
DEBUG_LEVELS = tuple(str(i) for i in range(6))


def env_choice(name, default, accepted):
    """The value of environment variable `name` (default when unset or empty), which
    must be one of `accepted`: a typo such as TESSERA_FUSION=NONE is an error naming
    what is accepted, never silently the default."""
    v = os.environ.get(name, "")
    if v == "":
        return default
    if v not in accepted:
        from .errors import ConfigError
        raise ConfigError(f"{name}={v!r} is not understood; accepted: {', '.join(accepted)}")
    return v


def env_number(name, default, kind=int, minimum=0):
    """A numeric environment variable (default when unset or empty), at least `minimum`."""
    v = os.environ.get(name, "")
    if v == "":
        return default
    try:
        n = kind(v)
    except ValueError:
        n = None
    if n is None or n < minimum:
        from .errors import ConfigError
        raise ConfigError(f"{name}={v!r} is not understood; accepted: "
                          f"{'an integer' if kind is int else 'a number'} >= {minimum}")
    return n


class _State:
    __slots__ = ("grad_enabled", "fusion_mode", "check_numerics", "check_numerics_opts",
                 "autocast", "tile_hint", "debug", "event_sinks", "capture")

    def __init__(self):
        self.grad_enabled = True
        self.fusion_mode = env_choice("TESSERA_FUSION", "default", FUSION_MODES)
        self.check_numerics = False
        self.check_numerics_opts = None
        self.autocast = None            # None or the active autocast policy
        self.tile_hint = None           # None or the active schedule hint
        self.debug = int(env_choice("TESSERA_DEBUG", "0", DEBUG_LEVELS))
        self.event_sinks = []           # profiler / capture listeners (see profiler.events)
        self.capture = None             # the graph recorder when capturing


STATE = _State()
