"""Custom operators (the seed's section 7.1): `op.custom(name, ...)` and `CustomOp`.

A custom op is dispatched like every other op, through `ops._dispatch.apply_op`
under the name "custom.<name>", so it is on the tape, seen by the profiler and
`check_numerics` (which name it), recorded by graph capture (replayable: its
forward is a function of buffers) and printed in the Graph IR in the seed's
generic form `"tessera.op"(...) {name = "<name>"}`.

Its forward is, per device: the kernel (`source=`/`kernel=`) on a GPU, else the
Python body written in tessera ops (any device); with neither, a DeviceError. The
body runs as one unit: with the event sinks, the tape and autocast off inside it
(so `check_numerics` reports the custom op, not an op inside it). Its gradient is
the user's adjoint (`adjoint=` or `@my_op.adjoint`), else the body differentiated
automatically, rematerialized in backward (only the inputs are saved, as
`jax.checkpoint`; a body that draws random numbers needs an explicit adjoint).

    >>> import tessera as ts
    >>> from tessera import op
    >>> @op.custom("doc_softplus", replace=True)
    ... def softplus(x):
    ...     return ts.log(1 + ts.exp(x))
    >>> x = ts.asarray([0.0, 1.0], requires_grad=True)
    >>> softplus(x).sum().backward()
    >>> [round(v, 4) for v in x.grad.tolist()]
    [0.5, 0.7311]
"""
from __future__ import annotations

import inspect
import re

from .._config import STATE
from ..errors import DeviceError, DTypeError, GradError, ShapeError, TesseraError
from ..tensor import Tensor, _new
from .kernel_source import Kernel
from .signature import parse

_REGISTRY: dict = {}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
PREFIX = "custom."


class RegistrationError(TesseraError, ValueError):
    """A custom op cannot be registered (name taken, bad name or option)."""


def registered(name=None):
    """The CustomOp registered as `name`, or the sorted list of names without one."""
    if name is None:
        return sorted(_REGISTRY)
    if name not in _REGISTRY:
        raise KeyError(f"[op.custom] no custom op named {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def unregister(name):
    """Remove a custom op (tests, notebooks). KeyError if absent."""
    registered(name)
    del _REGISTRY[name]


class _quiet:
    """The body of a custom op runs as one unit: no events, no tape, no autocast."""
    __slots__ = ("saved",)

    def __enter__(self):
        self.saved = (STATE.event_sinks, STATE.grad_enabled, STATE.autocast)
        STATE.event_sinks, STATE.grad_enabled, STATE.autocast = [], False, None

    def __exit__(self, *exc):
        STATE.event_sinks, STATE.grad_enabled, STATE.autocast = self.saved
        return False


class CustomOp:
    """A registered custom operator; call it like a function of tensors (keyword
    arguments are static attributes passed to the body, the adjoint and `out`)."""

    def __init__(self, name, body=None, kernel=None, adjoint=None, signature=None, out=None,
                 autocast=None):
        self.name, self.op_name = name, PREFIX + name
        self.body, self.kernel, self._adjoint, self.out = body, kernel, adjoint, out
        self.signature = parse(signature, name) if signature is not None else None
        self.autocast = autocast
        self._meta: dict = {}  # input signature -> (shape, dtype) learned from the body
        if body is not None:
            self._check_arity(body, "body")

    def __repr__(self):
        parts = [p for p, v in (("body", self.body), ("kernel", self.kernel),
                                ("adjoint", self._adjoint)) if v is not None]
        sig = f", signature={self.signature}" if self.signature is not None else ""
        return f"CustomOp({self.name!r}, {'+'.join(parts) or 'empty'}{sig})"

    def _check_arity(self, fn, what):
        if self.signature is None:
            return
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return
        pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               and p.default is p.empty]
        var = any(p.kind == p.VAR_POSITIONAL for p in params)
        n = len(self.signature.inputs)
        if not var and len(pos) != n:
            raise RegistrationError(f"[{self.name}] the {what} takes {len(pos)} positional "
                                    f"tensor(s), the signature {self.signature} lists {n}")

    # -- decorators ---------------------------------------------------------------
    def adjoint(self, fn):
        """Decorator: the VJP. Called `fn(g, *inputs, **attrs)` (plus `out=` if it has an
        `out` parameter); returns one gradient per input (a tensor for one input, None
        for no gradient)."""
        if self._adjoint is not None:
            raise RegistrationError(f"[{self.name}] already has an adjoint ({self._adjoint.__name__})")
        if not callable(fn):
            raise RegistrationError(f"[{self.name}] adjoint must be callable, got {type(fn).__name__}")
        self._adjoint = fn
        return fn

    def cpu(self, fn):
        """Decorator: the body in tessera ops (the CPU implementation of a kernel op)."""
        if self.body is not None:
            raise RegistrationError(f"[{self.name}] already has a body ({self.body.__name__})")
        self._check_arity(fn, "body")
        self.body = fn
        return self

    # -- calling ------------------------------------------------------------------
    def __call__(self, *args, **attrs):
        if (self.body is None and len(args) == 1 and not attrs and callable(args[0])
                and type(args[0]) is not Tensor):
            return self.cpu(args[0])  # `@op.custom(name, source=...)` decorating the CPU body
        from ..ops._dispatch import apply_op, same_device, to_tensor
        op = self.op_name
        xs = tuple(to_tensor(op, a) for a in args)
        dev = same_device(op, *xs) if xs else None
        if dev is None:
            raise ShapeError(f"[{self.name}] takes at least one tensor argument")
        if STATE.autocast is not None:
            xs = self._autocast(xs)
        if self.signature is not None:
            self.signature.check_inputs(self.name, xs)
        fwd, run_body = self._forward(xs, dev, attrs)
        shape, dtype, first = self._out_meta(xs, dev, attrs, fwd, run_body)
        run = fwd if first is None else _once(first, fwd)
        held = []  # the output, for an adjoint that asks for `out=`
        vjp, saved = self._vjp(xs, attrs, held)
        out = apply_op(op, xs, run, dtype, dev, vjp, saved, shape=shape)
        held.append(out.detach())
        if self.signature is not None:
            self.signature.check_output(self.name, out)
        return out

    def _autocast(self, xs):
        pol = STATE.autocast
        if self.op_name in pol.table or self.autocast is None:
            return tuple(pol.cast_inputs(self.op_name, xs))
        from ..precision.autocast import AutocastPolicy
        return tuple(AutocastPolicy(pol.dtype, {self.op_name: self.autocast}).cast_inputs(self.op_name, xs))

    def _forward(self, xs, dev, attrs):
        """(fwd, run_body): fwd(*buffers) -> output buffer for this call's device, a
        function of the buffers only so that graph capture can replay it; run_body
        (buffers -> Tensor) when the body computes it, else None."""
        metas = [(x.shape, x.dtype) for x in xs]
        if dev.type != "cpu" and self.kernel is not None:
            kernel, rule = self.kernel, self._rule

            def fwd(*bufs):
                ts = [_new(b, s, d, dev) for b, (s, d) in zip(bufs, metas)]
                shape, dtype = rule(ts, attrs)
                out = dev.backend.xp.empty(shape, dtype=dev.backend.storage_dtype(dtype))
                return kernel.launch(out, bufs, _new(out, shape, dtype, dev), ts, attrs)
            return fwd, None
        if self.body is None:
            raise DeviceError(f"[{self.name}] has no implementation for {dev}: it has a kernel "
                              "for GPUs only; give it a body in tessera ops (@my_op.cpu or by "
                              "decorating the function) to run it on the CPU")
        body, name = self.body, self.name
        want = self._rule(xs, attrs) if (self.out is not None or self.signature is not None) else None

        def run_body(bufs):
            with _quiet():
                r = body(*[_new(b, s, d, dev) for b, (s, d) in zip(bufs, metas)], **attrs)
                if type(r) is not Tensor:
                    raise TypeError(f"[{name}] the body must return one tessera Tensor, got "
                                    f"{type(r).__name__}")
                if want is not None and (tuple(r.shape) != tuple(want[0]) or r.dtype is not want[1]):
                    err = ShapeError if tuple(r.shape) != tuple(want[0]) else DTypeError
                    raise err(f"[{name}] the body returned shape {tuple(r.shape)} {r.dtype.name}; "
                              f"its shape/dtype rule says {tuple(want[0])} {want[1].name}")
                r.data  # realize inside the quiet scope: its fused group is part of this op
                return r

        def fwd(*bufs):
            return run_body(bufs).data
        return fwd, run_body

    def _rule(self, xs, attrs):
        """(shape, dtype) of the output: `out=` if given, else a signature's static
        result type, else the first input's."""
        from ..dtypes import get_dtype
        if self.out is None:
            if self.signature is not None and None not in self.signature.outputs[0].shape:
                o = self.signature.outputs[0]
                return o.shape, get_dtype(o.dtype)
            if self.signature is not None:
                return None if self.kernel is None else (xs[0].shape, get_dtype(self.signature.outputs[0].dtype))
            return xs[0].shape, xs[0].dtype
        r = self.out(*xs, **attrs)
        try:
            shape, dtype = r
            return tuple(int(d) for d in shape), get_dtype(dtype)
        except (TypeError, ValueError):
            raise TypeError(f"[{self.name}] out= must return (shape, dtype), got {r!r}") from None

    def _out_meta(self, xs, dev, attrs, fwd, run_body):
        """(shape, dtype, precomputed buffer or None). A kernel on a GPU or an `out` rule
        decides; a body alone is learned from its first run per input signature."""
        if run_body is None or self.out is not None:
            shape, dtype = self._rule(xs, attrs)
            return shape, dtype, None
        key = (tuple((x.shape, x.dtype) for x in xs), dev, _attr_key(attrs))
        hit = self._meta.get(key)
        if hit is not None:
            return hit[0], hit[1], None
        r = run_body([x.data for x in xs])
        if len(self._meta) < 256:
            self._meta[key] = (tuple(r.shape), r.dtype)
        return tuple(r.shape), r.dtype, r.data

    def _vjp(self, xs, attrs, held):
        """(vjp, saved) for apply_op, or (None, ()) when no input needs a gradient."""
        if not STATE.grad_enabled or not any(x.requires_grad for x in xs):
            return None, ()
        saved = tuple(x.detach() for x in xs)
        name, adj, body = self.name, self._adjoint, self.body
        if adj is not None:
            wants_out = _has_param(adj, "out")

            def vjp(g):
                kw = dict(attrs)
                if wants_out:  # a constant in higher-order derivatives
                    kw["out"] = held[0]
                return _grads(name, adj(g, *saved, **kw), saved)
            return vjp, saved
        if body is None:
            def vjp(g):
                raise GradError(f"[{name}] has no adjoint: give it one with @{name}.adjoint "
                                "(or adjoint=), or a body in tessera ops to differentiate")
            return vjp, saved

        def vjp(g):
            from ..autograd.functional import vjp as _vjp
            diff = [i for i, s in enumerate(saved) if s.dtype.is_differentiable]

            def f(*d):
                full = list(saved)
                for i, v in zip(diff, d):
                    full[i] = v
                with _NoAutocast():
                    return body(*full, **attrs)
            _, pull = _vjp(f, *[saved[i] for i in diff])
            gs = pull(g)
            out = [None] * len(saved)
            for i, gi in zip(diff, gs):
                out[i] = gi
            return tuple(out)
        return vjp, saved


class _NoAutocast:
    __slots__ = ("saved",)

    def __enter__(self):
        self.saved, STATE.autocast = STATE.autocast, None

    def __exit__(self, *exc):
        STATE.autocast = self.saved
        return False


def _once(buf, fwd):
    """The forward for apply_op when the output was already computed (to learn its
    dtype): the first call returns it, replays compute again."""
    cell = [buf]

    def run(*bufs):
        return cell.pop() if cell else fwd(*bufs)
    return run


def _attr_key(attrs):
    try:
        return tuple(sorted(attrs.items())) if attrs else ()
    except TypeError:
        return id(attrs)


def _has_param(fn, pname):
    try:
        return pname in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _grads(name, res, saved):
    """The adjoint's result as one gradient per input, shapes checked."""
    if type(res) is Tensor or res is None:
        res = (res,)
    res = tuple(res)
    if len(res) != len(saved):
        raise GradError(f"[{name}] the adjoint returned {len(res)} gradient(s) for "
                        f"{len(saved)} input(s)")
    for i, (g, x) in enumerate(zip(res, saved)):
        if g is not None and tuple(g.shape) != tuple(x.shape):
            raise ShapeError(f"[{name}] the adjoint returned a gradient of shape {tuple(g.shape)} "
                             f"for input {i} of shape {tuple(x.shape)}")
    return res


def custom(name, fn=None, *, source=None, kernel=None, grid=None, block=256, args=None,
           shared_mem=0, options=(), adjoint=None, signature=None, out=None, autocast=None,
           replace=False, compile_check=True):
    """Register a custom operator named `name` (the seed's `@op.custom("name")`).

    - `@op.custom("name")` on a function written in tessera ops: differentiated
      automatically (or by `adjoint=` / `@my_op.adjoint`), runs on every device.
    - `op.custom("name", source=CUDA_TEXT, kernel="fn", grid=..., block=...)` (or
      `kernel=op.kernel(...)`): the kernel runs on GPUs, compiled through tessera's
      kernel loader; decorate a function with the result (or pass it to `@my_op.cpu`)
      to give it a body in tessera ops for the CPU.
    - `signature="(tensor<1024xf32>) -> tensor<1024xf32>"`: MLIR types checked at each
      call (`?` for dynamic sizes). `out(*inputs, **attrs) -> (shape, dtype)`: the
      shape/dtype rule (default: the signature's result, else the first input's).
      `autocast`: "lower" | "fp32" | "promote" | None, this op's entry in the autocast
      policy table (an entry for "custom.<name>" in the active policy wins).
    - `replace=True` replaces an op of the same name; otherwise registering a name
      twice is a RegistrationError. Everything is checked (the kernel compiled, with
      the compiler this machine has, when `compile_check`) before the name is taken,
      so a failure leaves nothing registered.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistrationError(f"[op.custom] name must be an identifier (letters, digits, _ and .), "
                                f"got {name!r}")
    if autocast not in ("lower", "fp32", "promote", None):
        raise RegistrationError(f"[{name}] autocast must be 'lower', 'fp32', 'promote' or None, "
                                f"got {autocast!r}")
    if out is not None and not callable(out):
        raise RegistrationError(f"[{name}] out= must be a function (*inputs) -> (shape, dtype)")
    if adjoint is not None and not callable(adjoint):
        raise RegistrationError(f"[{name}] adjoint= must be callable")
    if isinstance(kernel, str) or source is not None:
        if source is None or not isinstance(kernel, str):
            raise RegistrationError(f"[{name}] a kernel from source needs both source= (the CUDA/HIP "
                                    "text) and kernel= (the __global__ function's name)")
        try:
            kernel = Kernel(source, kernel, grid, block, args, shared_mem, options)
        except ValueError as e:
            raise RegistrationError(str(e).replace("[op.kernel]", f"[{name}]")) from None
    elif kernel is not None and not isinstance(kernel, Kernel):
        raise RegistrationError(f"[{name}] kernel= must be a kernel name (with source=) or "
                                f"op.kernel(...), got {type(kernel).__name__}")

    def register(body):
        if name in _REGISTRY and not replace:
            raise RegistrationError(f"[op.custom] {name!r} is already registered "
                                    f"({_REGISTRY[name]!r}); pass replace=True to redefine it")
        if body is not None and not callable(body):
            raise RegistrationError(f"[{name}] the body must be a function, got {type(body).__name__}")
        try:
            op = CustomOp(name, body, kernel, adjoint, signature, out, autocast)
        except ValueError as e:  # signature parse errors name the op already
            raise RegistrationError(str(e)) from None
        if kernel is not None:
            kernel.op = name
            if compile_check:
                kernel.check_available()
        _REGISTRY[name] = op  # last: any failure above leaves nothing registered
        if body is not None:
            op.__doc__ = getattr(body, "__doc__", None)
            op.__wrapped__ = body
        return op

    if fn is not None:
        return register(fn)
    if kernel is not None:
        return register(None)
    return register
