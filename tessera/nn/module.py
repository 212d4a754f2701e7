"""`Module`: the container for parameters, buffers and sub-modules, as
`torch.nn.Module`; and `Parameter`, which makes a trainable leaf tensor.

A parameter is a plain `Tensor` (a leaf that requires grad), not a subclass: the
eager hot path tests `type(x) is Tensor`, which a subclass would fail. A module
therefore files an attribute as a parameter when it is assigned a leaf tensor
that requires grad (or through `register_parameter`, which also accepts frozen
ones); tensors registered with `register_buffer` are state too, but not trained.

>>> import tessera as ts
>>> class Affine(ts.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.w = ts.nn.Parameter(ts.ones((2,)))
...         self.register_buffer("shift", ts.zeros((2,)))
...     def forward(self, x):
...         return x * self.w + self.shift
>>> m = Affine()
>>> [name for name, _ in m.named_parameters()], list(m.state_dict())
(['w'], ['w', 'shift'])
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

from ..autograd.grad_mode import no_grad
from ..errors import ShapeError, TesseraError
from ..tensor import Tensor

__all__ = ["Module", "Parameter", "IncompatibleKeys"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def Parameter(data, requires_grad=True):
    """A leaf tensor that a `Module` registers as a parameter: `data` detached
    (it shares storage with `data` when that is a tensor), requiring grad."""
    from ..ops.creation import asarray
    t = data.detach() if type(data) is Tensor else asarray(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _is_param(v):
    return type(v) is Tensor and v.requires_grad and v.grad_fn is None


class Module:
    """Base class of layers and models: subclasses set attributes in `__init__`
    (after `super().__init__()`) and define `forward`; `module(x)` calls it."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- registration ---------------------------------------------------------
    def _dicts(self):
        try:
            return self.__dict__["_parameters"], self.__dict__["_buffers"], self.__dict__["_modules"]
        except KeyError:
            raise TesseraError(f"[{type(self).__name__}] assign attributes after calling "
                               "super().__init__() in __init__") from None

    def __setattr__(self, name, value):
        params, buffers, modules = self._dicts()
        if isinstance(value, Module):
            self._discard(name)
            modules[name] = value
        elif type(value) is Tensor and (name in params or _is_param(value)):
            self._discard(name)
            params[name] = value
        elif type(value) is Tensor and name in buffers:
            buffers[name] = value
        elif value is None and (name in params or name in buffers or name in modules):
            for d in (params, buffers, modules):
                if name in d:
                    d[name] = None
        else:
            self._discard(name)
            object.__setattr__(self, name, value)

    def _discard(self, name):
        for d in self._dicts():
            d.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for kind in ("_parameters", "_buffers", "_modules"):
            if kind in d and name in d[kind]:
                return d[kind][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if any(name in d for d in self._dicts()):
            self._discard(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register `param` (a tensor or None) as a parameter, even if frozen."""
        if param is not None and type(param) is not Tensor:
            raise TypeError(f"[register_parameter] '{name}' must be a Tensor or None, got "
                            f"{type(param).__name__}")
        self._discard(name)
        self._dicts()[0][name] = param

    def register_buffer(self, name, tensor):
        """Register a state tensor that is saved and moved but not trained."""
        if tensor is not None and type(tensor) is not Tensor:
            raise TypeError(f"[register_buffer] '{name}' must be a Tensor or None, got "
                            f"{type(tensor).__name__}")
        self._discard(name)
        self._dicts()[1][name] = tensor

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"[add_module] '{name}' must be a Module, got {type(module).__name__}")
        self._discard(name)
        self._dicts()[2][name] = module

    register_module = add_module

    # -- traversal ---------------------------------------------------------------
    def named_modules(self, prefix="", memo=None):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named(self, kind, prefix, recurse):
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, t in getattr(m, kind).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mp}.{name}" if mp else name), t

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, parameter) pairs; a parameter shared by two modules once."""
        return self._named("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True):
        return self._named("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    def apply(self, fn):
        """Call `fn(module)` on every sub-module, then on this one; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- modes and gradients --------------------------------------------------------
    def train(self, mode=True):
        """Set training mode here and in every sub-module (Dropout reads it)."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear the parameters' gradients (to None, or to zeros in place)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                with no_grad():
                    p.grad[...] = 0.0

    # -- state ---------------------------------------------------------------------
    def state_dict(self, prefix=""):
        """Ordered {dotted name: tensor} of parameters and buffers (detached, sharing
        storage with the module's tensors)."""
        out = OrderedDict()
        for mp, m in self.named_modules(prefix.rstrip(".")):
            for kind in ("_parameters", "_buffers"):
                for name, t in getattr(m, kind).items():
                    if t is not None:
                        out[f"{mp}.{name}" if mp else name] = t.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into the module's tensors in place (so optimizers holding the
        parameters see them). `strict`: missing or unexpected keys are an error;
        a shape mismatch is always one. Returns `(missing_keys, unexpected_keys)`."""
        from ..ops.creation import asarray
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            msg = [f"[load_state_dict] {type(self).__name__}: keys do not match"]
            if missing:
                msg.append(f"  missing keys: {missing}")
            if unexpected:
                msg.append(f"  unexpected keys: {unexpected}")
            raise KeyError("\n".join(msg))
        for k, t in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            v = v if type(v) is Tensor else asarray(v, dtype=t.dtype, device=t.device)
            if v.shape != t.shape:
                raise ShapeError(f"[load_state_dict] '{k}': the checkpoint has shape {v.shape}, "
                                 f"the module's tensor has shape {t.shape}")
            if v.device is not t.device:
                v = v.to(t.device)
            with no_grad():
                t[...] = v
        return IncompatibleKeys(missing, unexpected)

    def to(self, device=None, dtype=None):
        """Move (and/or cast floating) parameters and buffers; returns self. The
        module keeps its parameters' identity only when nothing changes."""
        for m in self.modules():
            for kind in ("_parameters", "_buffers"):
                d = getattr(m, kind)
                for name, t in d.items():
                    if t is None:
                        continue
                    dt = dtype if (dtype is not None and t.dtype.kind in "fc") else None
                    new = t.to(device, dt)
                    if new is not t:
                        new = new.detach()
                        if kind == "_parameters" and t.requires_grad:
                            new.requires_grad_(True)
                        d[name] = new
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, index=None):
        return self.to("cuda" if index is None else f"cuda:{index}")

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    # -- display -----------------------------------------------------------------
    def extra_repr(self):
        """The constructor arguments shown inside `Name(...)` in the repr."""
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}({extra}" if extra else f"{type(self).__name__}("
        return head + "\n" + "\n".join(lines) + "\n)"

    def __dir__(self):
        extra = [k for d in self._dicts() for k in d]
        return sorted(set(super().__dir__()) | set(extra))
