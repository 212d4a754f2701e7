"""The user's source line for error messages, explain() and IR locations.

`user_site()` walks up from the caller to the first frame outside the tessera
package: a few frame hops (~0.1 us), no `inspect.stack()` (which reads source
files and costs milliseconds). Only (filename, lineno, function) is kept, never
the frame, so no locals are kept alive.
"""
import os
import sys

_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep
# `python -m tessera` is user code too: its lines are what the demo should name.
_MAIN = _PKG + "__main__.py"


def user_site(skip=1):
    f = sys._getframe(skip)
    while f is not None and f.f_code.co_filename.startswith(_PKG) \
            and f.f_code.co_filename != _MAIN:
        f = f.f_back
    if f is None:
        return None
    return (f.f_code.co_filename, f.f_lineno, f.f_code.co_name)


def fmt_site(site):
    if site is None:
        return "<unknown>"
    fn, line, func = site
    return f"{fn}:{line} in {func}"


def source_text(site):
    """The text of the user's line (read lazily, only for messages)."""
    if site is None:
        return ""
    import linecache
    return linecache.getline(site[0], site[1]).strip()
