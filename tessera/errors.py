"""The exception hierarchy every tessera op raises.

Each error is a `TesseraError` and also the built-in exception a NumPy user would
catch (`ValueError` for shapes and numerics, `TypeError` for dtypes), so code
written against NumPy keeps working. Messages are tagged with the op:
"[matmul] shapes (3, 4) and (5, 6): inner dimensions 4 and 5 differ".
"""


class TesseraError(Exception):
    """Base class of every error tessera raises on purpose."""


class ShapeError(TesseraError, ValueError):
    """Shapes that do not broadcast, axes out of range, bad reshape targets."""


class DTypeError(TesseraError, TypeError):
    """Unknown dtype names, or a dtype an op does not accept."""


class DeviceError(TesseraError, ValueError):
    """Tensors on different devices in one op, or a device that is not usable."""


class NumericsError(TesseraError, ValueError):
    """A NaN or Inf found by check_numerics."""


class IndexingError(TesseraError, IndexError):
    """Indices out of range, or of a kind tessera does not accept."""


class GradError(TesseraError, RuntimeError):
    """Misuse of autodiff: backward twice, non-scalar without a gradient, a
    tensor modified in place after it was saved for backward."""


class ConfigError(TesseraError, ValueError):
    """A TESSERA_* environment variable (or a switch) set to a value tessera does not know."""


def fmt_shapes_aligned(*shapes):
    """Right-align shapes the way broadcasting aligns them, one per line."""
    n = max((len(s) for s in shapes), default=0)
    cols = [["" for _ in range(n - len(s))] + [str(d) for d in s] for s in shapes]
    width = max((len(c) for row in cols for c in row), default=1)
    lines = []
    for s, row in zip(shapes, cols):
        lines.append("    (" + ", ".join(c.rjust(width) if c else " " * width for c in row) + ")")
    return "\n".join(lines)
