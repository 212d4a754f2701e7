"""Elementwise primitives: one stanza per op (name, dtype rule, adjoint), the
public function built from it, and the single dispatch routine they share.

Adjoints are written in tessera ops (`g * out` for exp), so backward passes fuse
and differentiate again. Each stanza declares which values its adjoint needs
("x", "y", "out"); only those are saved on the tape.

Dtype rules: "same" keeps the promoted input dtype; "float" sends ints and bools
to the default float (fp32), as PyTorch does for `exp(int)`; "bool" returns bool
(comparisons, predicates); "int" accepts integers and bools only (bitwise);
"logical" computes on bools. Eager ops on small CPU tensors run NumPy directly;
elsewhere they are deferred into the fusion buffer (`tessera.fusion.lazy`).
"""
from __future__ import annotations

import cmath as _cmath
import math as _math

from .. import dtypes as _dt
from .._config import STATE
from ..device import CPU as _CPU
from ..autograd.engine import _origin, record
from ..errors import DTypeError
from ..fusion.ir import DTYPES as _IR_DTYPES, OPS as _IR_OPS
from ..tensor import Tensor, _new
from ._dispatch import _SCALARS, broadcast_shapes, same_device, to_tensor
from ._ew_fast import BSHAPES, add_plan, fast_binary, fast_unary, fast_where

_fp32 = _dt.fp32
_bool = _dt.bool_


class EW:
    """An elementwise op: `rule` is the dtype rule, `vjp(g, x, y, out)` the adjoint
    (returns a tuple with one gradient per operand), `saves` the values it reads."""
    __slots__ = ("name", "arity", "rule", "vjp", "saves", "cache", "fn", "plans", "sx", "sy",
                 "so", "holo")

    def __init__(self, name, arity, rule, vjp=None, saves=""):
        self.name, self.arity, self.rule, self.vjp, self.saves = name, arity, rule, vjp, saves
        self.cache = {}
        # `saves` as flags, for _record: x, y, out saved; adjoint conjugated for complex
        self.sx, self.sy, self.so = "x" in saves, "y" in saves, "out" in saves
        self.holo = name in _HOLO
        # CPU fast-path plans by operand key (dtype, or (dtype|scalar type, ...)):
        # (numpy function, out dtype, its storage dtype, records on the tape). Filled
        # by `apply` for keys whose operands need no cast; see `_fast_unary/_binary`.
        self.plans = {}


OPS = {}


def _result_dtypes(op, in_dt):
    """(output dtype, dtype the operands are cast to) for an op and the promoted
    operand dtype."""
    rule = op.rule
    if rule == "same":
        if in_dt.kind == "b" and op.name not in ("maximum", "minimum", "abs", "positive"):
            if op.name in ("add", "multiply"):
                return in_dt, in_dt  # NumPy: logical or / and on bools
            raise DTypeError(f"[{op.name}] is not defined for bool tensors; cast to an "
                             "integer or float dtype first")
        return in_dt, in_dt
    if rule == "float":
        d = in_dt if in_dt.kind in "fc" else _fp32
        return d, d
    if rule == "real_float":
        if in_dt.kind == "c":
            raise DTypeError(f"[{op.name}] is not defined for complex tensors ({in_dt.name})")
        d = in_dt if in_dt.kind == "f" else _fp32
        return d, d
    if rule == "bool":
        return _bool, in_dt
    if rule == "predicate":  # isnan & co: ints are never nan/inf
        return _bool, in_dt
    if rule == "int":
        if in_dt.kind not in "biu":
            raise DTypeError(f"[{op.name}] expects integer or bool tensors, got {in_dt.name}")
        return in_dt, in_dt
    if rule == "logical":
        return _bool, _bool
    if rule == "real_of":  # abs of complex -> real
        if in_dt is _dt.complex64:
            return _fp32, in_dt
        if in_dt is _dt.complex128:
            return _dt.fp64, in_dt
        if rule == "real_of" and op.name != "abs":
            return in_dt, in_dt
        return in_dt, in_dt
    if rule == "round":
        return in_dt, in_dt
    raise AssertionError(rule)


def _operand_dtype(x):
    if type(x) is Tensor:
        return x.dtype
    return None


def apply(op, args):
    """Dispatch one elementwise op: checks, dtypes and broadcasting at the call
    (so errors point at the user's line), then eager NumPy or the lazy buffer."""
    if STATE.autocast is not None:  # tessera.precision.autocast policy (exp, log, ...)
        args = STATE.autocast.cast_inputs(op.name, args)
    # -- operands and dtypes (cached by the operand dtypes/scalar types) ----
    tensors = [a for a in args if type(a) is Tensor]
    if len(tensors) != len(args):
        args = list(args)
        for i, a in enumerate(args):
            if type(a) is not Tensor and not isinstance(a, _SCALARS):
                if getattr(type(a), "__array_ufunc__", 0) is None:
                    # NumPy's opt-out convention (a LinearOperator sets it): let
                    # Python try the other operand's reflected operator, as
                    # ndarray does, instead of failing to convert it.
                    return NotImplemented
                args[i] = to_tensor(op.name, a, device=tensors[0].device if tensors else None)
            elif type(a) not in _SCALARS and type(a) is not Tensor:
                # np.float64 / np.complex128 / IntEnum subclass a Python scalar: treat
                # them as that scalar (weak), as the dtype rules expect exact types
                args[i] = _plain_scalar(a)
        tensors = [a for a in args if type(a) is Tensor]
        if not tensors:
            args[0] = to_tensor(op.name, args[0])
            tensors = [args[0]]
    key = tuple([a.dtype if type(a) is Tensor else type(a) for a in args])  # listcomp: 2x a genexpr
    dts = op.cache.get(key)
    if dts is None:
        out_dt, in_dt = _rule_for(op, args)
        dts = op.cache[key] = out_dt, in_dt, _fusable(op, key, in_dt, out_dt)
    out_dt, in_dt, fusable = dts
    if len(tensors) != len(args) and in_dt is not None and in_dt.kind in "iu":
        _check_int_scalars(op.name, args, in_dt)
    if len(tensors) == 1:
        t0 = tensors[0]
        dev = t0.device
        shape = t0.shape
        for a in args:
            if type(a) is Tensor and a is not t0:
                shape = a.shape
    else:
        dev = tensors[0].device
        for t in tensors:
            if t.device is not dev:
                same_device(op.name, *tensors)  # raises the DeviceError
        shape = tensors[0].shape
        for t in tensors[1:]:
            if t.shape != shape:
                shape = broadcast_shapes(op.name, *(t.shape for t in tensors))
                break
    backend = dev.backend
    sinks = STATE.event_sinks
    if sinks:  # a begin mark, so the profiler times the compute itself
        for s in sinks:
            s("op_start", op.name)
    # -- compute: lazily fused, or eagerly ------------------------------------
    n = 1
    for d in shape:
        n *= d
    if fusable and (n >= backend.FUSE_MIN_SIZE or STATE.fusion_mode == "aggressive"
                    and _any_pending(args)) and STATE.fusion_mode != "none":
        from ..fusion.lazy import lazy_elementwise
        out = lazy_elementwise(op.name, args, in_dt, out_dt, shape, dev, None)
    else:
        ops_in = []
        for a in args:
            if type(a) is Tensor:
                x = backend.compute(a._buf if a._buf is not None else a.data, a.dtype)
                if a.dtype is not in_dt and in_dt is not None:
                    x = x.astype(backend.compute_dtype(in_dt))
                ops_in.append(x)
            else:
                ops_in.append(a)
        out = _new(backend.elementwise(op.name, ops_in, out_dt), shape, out_dt, dev)
        if dev is _CPU:
            if op.arity < 3:
                if key not in op.plans:
                    add_plan(op, key, tensors, in_dt, out_dt, backend)
            elif key[1:] not in op.plans and key[0] is _bool:
                add_plan(op, key, tensors[1:] if type(args[0]) is Tensor else tensors,
                          in_dt, out_dt, backend)
            if len(tensors) == 2 and tensors[0].shape != tensors[1].shape \
                    and len(BSHAPES) < 4096:
                BSHAPES[(tensors[0].shape, tensors[1].shape)] = (shape, n)
    out._name = op.name  # the producer, for check_numerics and error messages
    if STATE.grad_enabled and op.vjp is not None and out_dt.is_differentiable:
        for t in tensors:
            if t.requires_grad:
                _record(op, args, out)
                break
    sinks = STATE.event_sinks
    if sinks:
        for s in sinks:
            s("op", (op.name, args, out))
    return out


def _fusable(op, key, in_dt, out_dt):
    """Whether the fusion IR can compute this call, asked of the IR's own tables (its ops,
    the dtype kinds each accepts, its dtypes) for every operand, the promoted dtype and the
    result. What it lacks (complex operands, isnan of an int, floor of a bool) would
    otherwise fail inside the group at realization, far from the call; it runs eagerly."""
    info = _IR_OPS.get(op.name)
    if info is None or out_dt.name not in _IR_DTYPES:
        return False
    if in_dt is not None:
        if in_dt.name not in _IR_DTYPES or _IR_DTYPES[in_dt.name].kind not in info.kinds:
            return False
        if out_dt is not {"same": in_dt, "bool": _bool}.get(info.result, out_dt):
            return False
    # operand dtypes (scalars are typed by the key and become consts of in_dt)
    return all(k.name in _IR_DTYPES for k in key if isinstance(k, _dt.DType))


def _any_pending(args):
    """A lazy operand: under fusion mode "aggressive" small ops on it stay lazy too
    (per-row statistics like sum / n join the row program of their reduction)."""
    for a in args:
        if type(a) is Tensor and a._buf is None:
            return True
    return False


def _plain_scalar(a):
    for t in (int, float, complex):
        if isinstance(a, t):
            return t(a)
    return a


def _check_int_scalars(name, args, dt):
    """A Python int must fit the integer dtype it is weakly cast to (NumPy raises
    an untagged OverflowError; a fused kernel would silently wrap)."""
    info = _dt.iinfo(dt)
    for a in args:
        if type(a) is int and not info.min <= a <= info.max:
            raise DTypeError(f"[{name}] Python integer {a} is out of range for {dt.name} "
                             f"({info.min}..{info.max}); cast the tensor to a wider dtype first")


def _rule_for(op, args):
    dts = [a.dtype for a in args if type(a) is Tensor]
    if op.name == "where":
        c = args[0]
        if type(c) is Tensor and c.dtype is not _bool:
            raise DTypeError(f"[where] condition must be bool, got {c.dtype.name}")
        data = args[1:]
        tds = [a.dtype for a in data if type(a) is Tensor]
        if tds:
            d = _dt.result_type(*tds)
            for a in data:
                if type(a) is not Tensor:
                    d = _dt.scalar_result(d, a)
        else:
            d = _dt.scalar_result(_dt.bool_, data[0]) if type(data[0]) is bool else \
                _dt.get_dtype(type(data[0]))
            d = _dt.scalar_result(d, data[1])
        return d, d
    if not dts:
        raise DTypeError(f"[{op.name}] needs at least one tensor operand")
    d = _dt.result_type(*dts)
    for a in args:
        if type(a) is not Tensor:
            d = _dt.scalar_result(d, a)
    if d.kind == "c" and op.name in _REAL_ONLY:
        raise DTypeError(f"[{op.name}] is not defined for complex tensors ({d.name}): complex "
                         "numbers have no order (as the Array API says); compare abs() or real()")
    return _result_dtypes(op, d)


# Ops the Array API defines for real operands only (NumPy would order complex
# numbers lexicographically, PyTorch refuses: tessera refuses).
_REAL_ONLY = frozenset(("maximum", "minimum", "less", "less_equal", "greater", "greater_equal",
                        "floor", "ceil", "trunc", "floor_divide", "remainder", "signbit"))
# Holomorphic ops: their adjoint for complex operands is g * conj(f'(z)) (PyTorch's
# convention). Every f' below is written with real coefficients, so conj(f'(z)) is
# f' evaluated at the conjugated saved values: `_record` passes those.
_HOLO = frozenset(("negative", "positive", "square", "reciprocal", "sqrt", "rsqrt", "exp",
                   "exp2", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan", "asin",
                   "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "add",
                   "subtract", "multiply", "divide"))


def _cj(v):
    if type(v) is Tensor:
        from .complex import conj
        return conj(v)
    return v.conjugate() if type(v) is complex else v


def _record(op, args, out):
    vjp = op.vjp
    if op.arity == 3:  # where
        c = args[0]
        a, b = args[1], args[2]
        ins = (None, a if type(a) is Tensor else None, b if type(b) is Tensor else None)
        record("where", ins, out, lambda g: vjp(g, c, None, None), saved=())
        return
    x = args[0]
    x0 = x if type(x) is Tensor else None
    if op.arity == 2:
        y = args[1]
        ins = (x0, y if type(y) is Tensor else None)
    else:
        y = None
        ins = (x0,)
    o = None
    if not op.saves:  # add, subtract, negative, ...: nothing saved
        saved = origins = ()
    else:
        # Where each saved value comes from, as engine._origin would find it (the
        # first input sharing its storage and version, else the output), without
        # searching: x is input 0; y is input 1 unless input 0 is the same storage.
        saved, origins = [], []
        if op.sx and x0 is not None:
            x = x.detach()
            saved.append(x)
            origins.append(("in", 0))
        if op.sy and type(y) is Tensor:
            y0 = y
            y = y.detach()
            saved.append(y)
            origins.append(("in", 1) if x0 is None or x0._version is not y0._version
                           else _origin(y, ins, (out,)))
        if op.so:
            o = out.detach()
            saved.append(o)
            origins.append(("out", 0))  # out is new: no input shares its version
        saved, origins = tuple(saved), tuple(origins)
    if op.holo and out.dtype.kind == "c":
        record(op.name, ins, out, lambda g: vjp(g, _cj(x), _cj(y), _cj(o)), saved, None,
               origins=origins)
        return
    record(op.name, ins, out, lambda g: vjp(g, x, y, o), saved, None, origins=origins)


def _define(name, arity, rule, vjp=None, saves="", doc=""):
    op = EW(name, arity, rule, vjp, saves)
    OPS[name] = op
    if arity == 1:
        fn = fast_unary(op)
    elif arity == 2:
        fn = fast_binary(op)
    else:
        fn = fast_where(op)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc or f"Elementwise `{name}`, as `numpy.{name}` / the Array API standard."
    op.fn = fn
    return fn


# ---------------------------------------------------------------------------
# The stanzas. Adjoints use the public functions defined below them; Python
# resolves those names at backward time.
# ---------------------------------------------------------------------------
def _half(t):
    return t * 0.5


negative = _define("negative", 1, "same", lambda g, x, y, o: (-g,))
positive = _define("positive", 1, "same", lambda g, x, y, o: (g,))
abs = _define("abs", 1, "real_of", lambda g, x, y, o: (g * sign(x),), "x",
              "Absolute value, as `numpy.abs`. Its gradient at 0 is 0.")
def _sign_vjp(g, x, y, o):
    if o.dtype.kind != "c":
        return (g * 0,)
    # sgn(z) = z/|z| is not holomorphic: its gradient is the part of g orthogonal
    # to sgn(z), over |z| (PyTorch's sgn backward); 0 at z = 0
    r = abs(x)
    zero = r == 0
    gr = real(g * o.conj())
    return (where(zero, 0.0, (g - gr * o) / where(zero, 1.0, r)),)


sign = _define("sign", 1, "same", _sign_vjp, "xout",
               "Sign, as `numpy.sign`; z/|z| (0 at 0) for complex z, as the Array API.")
square = _define("square", 1, "same", lambda g, x, y, o: (g * x * 2,), "x")
reciprocal = _define("reciprocal", 1, "float", lambda g, x, y, o: (-g * o * o,), "out")
sqrt = _define("sqrt", 1, "float", lambda g, x, y, o: (g / (o * 2),), "out")
rsqrt = _define("rsqrt", 1, "float", lambda g, x, y, o: (g * o * o * o * -0.5,), "out",
                "1 / sqrt(x).")
exp = _define("exp", 1, "float", lambda g, x, y, o: (g * o,), "out",
              "Exponential, as `numpy.exp`.\n\n>>> import tessera as ts\n>>> float(ts.exp(ts.asarray(0.0)))\n1.0")
exp2 = _define("exp2", 1, "float", lambda g, x, y, o: (g * o * 0.6931471805599453,), "out")
expm1 = _define("expm1", 1, "float", lambda g, x, y, o: (g * (o + 1),), "out")
log = _define("log", 1, "float", lambda g, x, y, o: (g / x,), "x")
log1p = _define("log1p", 1, "float", lambda g, x, y, o: (g / (x + 1),), "x")
log2 = _define("log2", 1, "float", lambda g, x, y, o: (g / (x * 0.6931471805599453),), "x")
log10 = _define("log10", 1, "float", lambda g, x, y, o: (g / (x * 2.302585092994046),), "x")
sin = _define("sin", 1, "float", lambda g, x, y, o: (g * cos(x),), "x")
cos = _define("cos", 1, "float", lambda g, x, y, o: (-g * sin(x),), "x")
tan = _define("tan", 1, "float", lambda g, x, y, o: (g * (o * o + 1),), "out")
asin = _define("asin", 1, "float", lambda g, x, y, o: (g * rsqrt(1 - x * x),), "x")
acos = _define("acos", 1, "float", lambda g, x, y, o: (-g * rsqrt(1 - x * x),), "x")
atan = _define("atan", 1, "float", lambda g, x, y, o: (g / (x * x + 1),), "x")
sinh = _define("sinh", 1, "float", lambda g, x, y, o: (g * cosh(x),), "x")
cosh = _define("cosh", 1, "float", lambda g, x, y, o: (g * sinh(x),), "x")
tanh = _define("tanh", 1, "float", lambda g, x, y, o: (g * (1 - o * o),), "out")
asinh = _define("asinh", 1, "float", lambda g, x, y, o: (g * rsqrt(x * x + 1),), "x")
# acosh: 1/(sqrt(x-1) sqrt(x+1)), not rsqrt(x*x-1): equal for real x, but only the
# product form has the branch cuts of complex acosh
acosh = _define("acosh", 1, "float", lambda g, x, y, o: (g / (sqrt(x - 1) * sqrt(x + 1)),), "x")
atanh = _define("atanh", 1, "float", lambda g, x, y, o: (g / (1 - x * x),), "x")
erf = _define("erf", 1, "real_float",
              lambda g, x, y, o: (g * exp(-x * x) * 1.1283791670955126,), "x")
sigmoid = _define("sigmoid", 1, "real_float", lambda g, x, y, o: (g * o * (1 - o),), "out",
                  "Logistic sigmoid 1 / (1 + exp(-x)), computed without overflow.")
floor = _define("floor", 1, "round", lambda g, x, y, o: (g * 0,))
ceil = _define("ceil", 1, "round", lambda g, x, y, o: (g * 0,))
trunc = _define("trunc", 1, "round", lambda g, x, y, o: (g * 0,))
round = _define("round", 1, "round", lambda g, x, y, o: (g * 0,), "",
                "Round half to even, as `numpy.round` with 0 decimals.")
logical_not = _define("logical_not", 1, "logical")
bitwise_invert = _define("bitwise_invert", 1, "int")
isnan = _define("isnan", 1, "predicate")
isinf = _define("isinf", 1, "predicate")
isfinite = _define("isfinite", 1, "predicate")
signbit = _define("signbit", 1, "predicate")


def _pow_vjp(g, x, y, o):
    if o.dtype.kind == "c":
        return _pow_vjp_complex(g, x, y, o)
    gx = g * y * pow(x, y - 1) if type(y) is Tensor or y != 0 else g * 0
    gy = None
    if type(y) is Tensor and o.dtype.kind == "c":
        # complex: x, y, o arrive conjugated (_HOLO); log(0) is taken as 0, as PyTorch
        if type(x) is Tensor:
            gy = g * o * log(where(x == 0, 1, x))
        else:
            gy = g * o * log(x) if x != 0 else g * 0
    elif type(y) is Tensor:
        # d/dy x**y = x**y log x; defined as 0 where x == 0 (the limit from the right
        # for y > 0), as PyTorch does, instead of a NaN from 0 * log(0). A Python-scalar
        # base (rpow) takes its log in Python: an op on scalars alone would build its
        # tensor on the default device, not on g's.
        if type(x) is Tensor:
            gy = g * o * log(where(x > 0, x, 1))
        else:
            gy = g * o * (_math.log(x) if x > 0 else 0.0)
    return gx, gy


def _pow_vjp_complex(g, x, y, o):
    # g * conj(f'): conjugating the result, not the operands, keeps the branch cut
    # of x**y for real negative x where the forward pass put it
    gx = _cj(y * pow(x, y - 1)) * g if type(x) is Tensor else None
    gy = None
    if type(y) is Tensor:  # d/dy x**y = x**y log x, taken as 0 at x == 0 (PyTorch)
        if type(x) is Tensor:  # a real base of a complex power: the complex log
            lg = log(where(x == 0, 1, x if x.dtype.kind == "c" else astype(x, o.dtype)))
        else:
            lg = _cmath.log(x) if x != 0 else 0.0
        gy = g * _cj(o * lg)
    return gx, gy


def _max_vjp(g, x, y, o):
    # Ties split the gradient evenly between the operands (documented, as JAX does).
    xt = x == o if type(x) is Tensor else None
    yt = y == o if type(y) is Tensor else None
    if xt is not None and yt is not None:
        w = where(xt & yt, 0.5, where(xt, 1.0, 0.0))
        return g * w, g * (1.0 - w)
    if xt is not None:
        return g * where(xt, 1.0, 0.0), None
    return None, g * where(yt, 1.0, 0.0)


add = _define("add", 2, "same", lambda g, x, y, o: (g, g))
subtract = _define("subtract", 2, "same", lambda g, x, y, o: (g, -g))
multiply = _define("multiply", 2, "same", lambda g, x, y, o: (g * y, g * x), "xy")
divide = _define("divide", 2, "float", lambda g, x, y, o: (g / y, -g * o / y), "yout",
                 "True division, as `numpy.divide`; integer operands give fp32.")
floor_divide = _define("floor_divide", 2, "same", lambda g, x, y, o: (g * 0, g * 0))
remainder = _define("remainder", 2, "same",
                    lambda g, x, y, o: (g, -g * floor_divide(x, y)), "xy")
pow = _define("pow", 2, "same", _pow_vjp, "xyout")
maximum = _define("maximum", 2, "same", _max_vjp, "xyout",
                  "Elementwise maximum; NaN propagates. Gradient ties split evenly.")
minimum = _define("minimum", 2, "same", _max_vjp, "xyout",
                  "Elementwise minimum; NaN propagates. Gradient ties split evenly.")
atan2 = _define("atan2", 2, "real_float",
                lambda g, x, y, o: (g * y / (x * x + y * y), -g * x / (x * x + y * y)), "xy")
hypot = _define("hypot", 2, "real_float", lambda g, x, y, o: (g * x / o, g * y / o), "xyout")
copysign = _define("copysign", 2, "real_float",
                   lambda g, x, y, o: (g * sign(x) * sign(o), g * 0), "xout")
logaddexp = _define("logaddexp", 2, "real_float",
                    lambda g, x, y, o: (g * exp(x - o), g * exp(y - o)), "xyout")
equal = _define("equal", 2, "bool")
not_equal = _define("not_equal", 2, "bool")
less = _define("less", 2, "bool")
less_equal = _define("less_equal", 2, "bool")
greater = _define("greater", 2, "bool")
greater_equal = _define("greater_equal", 2, "bool")
logical_and = _define("logical_and", 2, "logical")
logical_or = _define("logical_or", 2, "logical")
logical_xor = _define("logical_xor", 2, "logical")
bitwise_and = _define("bitwise_and", 2, "int")
bitwise_or = _define("bitwise_or", 2, "int")
bitwise_xor = _define("bitwise_xor", 2, "int")
bitwise_left_shift = _define("bitwise_left_shift", 2, "int")
bitwise_right_shift = _define("bitwise_right_shift", 2, "int")
where = _define("where", 3, "same",
                lambda g, c, y, o: (None, where(c, g, 0.0), where(c, 0.0, g)), "",
                "Select from `x1` where `cond` is true, else `x2`, as `numpy.where`.")


def clip(x, min=None, max=None):
    """Clamp to [min, max], as the Array API `clip`. The gradient flows where
    min <= x <= max (inclusive), as in PyTorch."""
    x = to_tensor("clip", x)
    out = x
    if min is not None:
        out = where(out < min, min if type(min) is not Tensor else min, out)
    if max is not None:
        out = where(out > max, max, out)
    if out.dtype is not x.dtype and x.dtype.kind in "iu":
        out = astype(out, x.dtype)
    return out


# -- casts -------------------------------------------------------------------
def astype(x, dtype, copy=True):
    """Cast to `dtype`, as the Array API `astype`. The gradient flows back in the
    input's dtype. fp32 -> bf16/fp16/fp8 rounds to nearest even (bit-exact with
    ml_dtypes); float -> int truncates toward zero."""
    x = to_tensor("astype", x)
    dt = _dt.get_dtype(dtype, "astype")
    if dt is x.dtype:
        return x.detach().requires_grad_(False) if False else (x if not copy else _copy(x))
    from .cast import cast_tensor
    return cast_tensor(x, dt)


def _copy(x):
    from .movement import copy
    return copy(x)


def real(x):
    """Real part (the input itself for real dtypes)."""
    x = to_tensor("real", x)
    if not x.dtype.is_complex:
        return x
    from .complex import real_part
    return real_part(x)
