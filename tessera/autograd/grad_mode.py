"""`no_grad` / `enable_grad` / `set_grad_enabled`: context managers and decorators
that switch tape recording off or on for the current thread of work."""
import functools

from .._config import STATE


class _GradMode:
    __slots__ = ("_enabled", "_prev")

    def __init__(self, enabled):
        self._enabled = enabled
        self._prev = []

    def __enter__(self):
        self._prev.append(STATE.grad_enabled)
        STATE.grad_enabled = self._enabled
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self._prev.pop()
        return False

    def __call__(self, fn):
        enabled = self._enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(enabled):
                return fn(*args, **kwargs)
        return wrapper


def no_grad():
    """Do not record ops on the tape (context manager or decorator)."""
    return _GradMode(False)


def enable_grad():
    """Record ops on the tape even inside `no_grad` (context manager or decorator)."""
    return _GradMode(True)


def set_grad_enabled(mode):
    return _GradMode(bool(mode))


def is_grad_enabled():
    return STATE.grad_enabled
