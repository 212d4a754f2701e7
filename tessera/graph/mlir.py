"""A tiny printer for MLIR's generic operation form.

Just enough to write the three IR levels of a captured graph so that
`mlir-opt --allow-unregistered-dialect` parses them: builtin types for tessera
dtypes (`tensor<4x8xf32>`, `bf16`, `i1`, `ui8`, `complex<f32>`), attributes
(integers, floats, strings, bools, arrays, nested dictionaries), string
escaping, file locations (`loc("file.py":12:0)`), and an indenting emitter for
`"dialect.op"(%a, %b) ({ region }) {attrs} : (types) -> types` lines.

    >>> tensor_type((4, 8), "fp32")
    'tensor<4x8xf32>'
    >>> attr_dict({"tessera.id": 3, "name": 'a"b'})
    '{name = "a\\\\"b", tessera.id = 3 : i64}'
"""
from __future__ import annotations

import math
import re
import struct

# tessera dtype name -> MLIR builtin element type
_ELEM = {
    "fp64": "f64", "fp32": "f32", "fp16": "f16", "bf16": "bf16",
    # fp8 types need a newer MLIR than 15; an opaque dialect type keeps them parseable
    "fp8_e4m3": "!tessera.fp8_e4m3", "fp8_e5m2": "!tessera.fp8_e5m2",
    "bool": "i1", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
    "uint8": "ui8", "uint16": "ui16", "uint32": "ui32", "uint64": "ui64",
    "complex64": "complex<f32>", "complex128": "complex<f64>",
}

_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.]*$")


def elem_type(dtype) -> str:
    """MLIR element type of a tessera dtype (object or name)."""
    name = getattr(dtype, "name", dtype)
    return _ELEM.get(name, "!tessera." + re.sub(r"[^A-Za-z0-9_]", "_", str(name)))


def tensor_type(shape, dtype) -> str:
    dims = "".join(f"{int(d)}x" for d in shape)
    return f"tensor<{dims}{elem_type(dtype)}>"


def memref_type(shape, dtype) -> str:
    dims = "".join(f"{int(d)}x" for d in shape)
    return f"memref<{dims}{elem_type(dtype)}>"


def scalar_type(value) -> str:
    """Type of a Python scalar operand (weakly typed in tessera: the widest)."""
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i64"
    if isinstance(value, complex):
        return "complex<f64>"
    return "f64"


def string(s) -> str:
    """A quoted MLIR string literal: `"` and `\\` escaped, other non-printables as \\XX."""
    out = []
    for ch in str(s).encode("utf-8"):
        c = chr(ch)
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= ch < 0x7F:
            out.append(c)
        else:
            out.append(f"\\{ch:02X}")
    return '"' + "".join(out) + '"'


def float_attr(x, ty="f64") -> str:
    x = float(x)
    if math.isfinite(x):
        r = repr(x)
        if "." not in r:  # MLIR float literals need the dot: 1e-30 -> 1.0e-30
            r = r.replace("e", ".0e") if "e" in r else r + ".0"
        return f"{r} : {ty}"
    bits = struct.unpack("<Q", struct.pack("<d", x))[0]
    return f"0x{bits:016X} : {ty}"


def attr(v) -> str:
    """An attribute value from a Python value (None -> unit, DType -> its name)."""
    if v is None:
        return "unit"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v} : i64"
    if isinstance(v, float):
        return float_attr(v)
    if isinstance(v, complex):
        return f"[{float_attr(v.real)}, {float_attr(v.imag)}]"
    if isinstance(v, str):
        return string(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(attr(e) for e in v) + "]"
    if isinstance(v, dict):
        return attr_dict(v) if v else "{}"
    if isinstance(v, Raw):
        return v.text
    name = getattr(v, "name", None)
    if isinstance(name, str):  # DType, Device, ...
        return string(name)
    return string(repr(v))


class Raw:
    """Attribute text printed as is (e.g. a type attribute)."""
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


def attr_name(k) -> str:
    return k if _BARE.match(k) else string(k)


def attr_dict(d) -> str:
    if not d:
        return ""
    items = sorted(d.items())
    return "{" + ", ".join(attr_name(k) if v is None else f"{attr_name(k)} = {attr(v)}"
                           for k, v in items) + "}"


def loc(site) -> str:
    """`loc("file":line:0)` for a (filename, lineno, function) site, else `loc(unknown)`."""
    if not site:
        return "loc(unknown)"
    fn, line = site[0], site[1]
    return f"loc({string(fn)}:{int(line)}:0)"


def fn_type(ins, outs) -> str:
    o = ", ".join(outs)
    return f"({', '.join(ins)}) -> " + (f"({o})" if len(outs) != 1 else o)


class Emitter:
    """Collects indented lines of generic-form operations."""

    def __init__(self):
        self.lines = []
        self.depth = 0

    def op(self, name, operands=(), types=(), results=(), result_types=(), attrs=None,
           site=None, region=None):
        """One operation. `region`: a callable that emits the body (a single block;
        `region` may also be a (block_args, callable) pair for a block with arguments)."""
        lhs = (", ".join(results) + " = ") if results else ""
        a = attr_dict(attrs or {})
        ty = fn_type(types, result_types)
        head = f'{lhs}"{name}"({", ".join(operands)})'
        tail = (f" {a}" if a else "") + f" : {ty}" + (f" {loc(site)}" if site is not None else "")
        if region is None:
            self.lines.append("  " * self.depth + head + tail)
            return
        args, body = region if isinstance(region, tuple) else ((), region)
        self.lines.append("  " * self.depth + head + " ({")
        if args:
            self.lines.append("  " * self.depth + "^bb0(" + ", ".join(f"{n}: {t}" for n, t in args) + "):")
        self.depth += 1
        body()
        self.depth -= 1
        self.lines.append("  " * self.depth + "})" + tail)

    def module(self, body, attrs=None):
        self.op("builtin.module", attrs=attrs, region=body)
        return self

    def comment(self, text):
        for ln in str(text).splitlines():
            self.lines.append("  " * self.depth + "// " + ln)

    def text(self):
        return "\n".join(self.lines) + "\n"
