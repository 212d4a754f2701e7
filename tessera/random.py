"""Seeded random numbers: the `Generator` class, the per-device default generators
that `manual_seed` resets, and the `randn` / `rand` shortcuts.

On the CPU a generator wraps `numpy.random.Generator(PCG64)`; on a GPU it wraps
CuPy's `cupy.random.default_rng` (imported only when a CUDA generator is made, so
this module imports without CuPy). Every draw is made in fp32 (fp64 for fp64) on
the tensor's device and rounded into the requested dtype, so bf16/fp16 draws are
fp32 draws rounded to nearest even. The same seed gives the same values on the
same device; streams from `Generator.spawn` are statistically independent (NumPy's
`SeedSequence`). The two devices use different bit generators: a seed does not
give the same numbers on the CPU and the GPU.

>>> import tessera as ts
>>> from tessera.random import Generator
>>> a = Generator(0, "cpu").normal((2, 3))
>>> b = Generator(0, "cpu").normal((2, 3))
>>> bool((a == b).all())
True
"""
from __future__ import annotations

import operator

import numpy as np

from . import dtypes as _dt
from .device import get_device
from .errors import DTypeError, ShapeError
from .tensor import Tensor

__all__ = ["Generator", "manual_seed", "default_generator", "randn", "rand"]


def _shape(op, shape):
    if isinstance(shape, Tensor):
        shape = shape.tolist()
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        out = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise ShapeError(f"[{op}] shape must be an int or a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in out):
        raise ShapeError(f"[{op}] negative dimension in shape {out}")
    return out


def _float_dtype(op, dtype):
    dt = _dt.default_float() if dtype is None else _dt.get_dtype(dtype)
    if dt.kind != "f":
        raise DTypeError(f"[{op}] draws floating-point values; got dtype {dt.name} "
                         "(accepted: fp64, fp32, fp16, bf16)")
    return dt


class Generator:
    """A seeded stream of random numbers on one device, as `numpy.random.Generator`
    (CPU: PCG64; CUDA: CuPy's default bit generator). `seed=None` takes fresh
    entropy from the OS. Methods return tessera tensors on the generator's device.
    """

    def __init__(self, seed=None, device=None):
        self.device = get_device(device)
        self._seq = seed if isinstance(seed, np.random.SeedSequence) else \
            np.random.SeedSequence(seed)
        self.seed = self._seq.entropy
        if self.device.type == "cpu":
            self._rng = np.random.Generator(np.random.PCG64(self._seq))
        else:
            from .backend.cupy_source import cupy as _cupy  # lazily: only a GPU generator needs CuPy
            cupy = _cupy()
            with cupy.cuda.Device(self.device.index):
                self._rng = cupy.random.default_rng(int(self._seq.generate_state(1, np.uint64)[0]))

    def __repr__(self):
        return f"Generator(seed={self.seed}, device='{self.device}')"

    def spawn(self, n):
        """`n` independent child generators on the same device, derived from this
        one's seed (reproducible: the k-th spawn of a seed is always the same)."""
        return [Generator(s, self.device) for s in self._seq.spawn(operator.index(n))]

    # -- the raw draws: arrays on the device, fp32 or fp64 ---------------------
    def _op(self, name, draw, dt):
        """A draw as an op with no inputs: `draw()` makes the array each time it is
        called, so a captured graph replays fresh randomness instead of freezing
        the first sample as a constant."""
        from .ops._dispatch import apply_op
        b = self.device.backend
        return apply_op("random." + name, (), lambda: b.store(draw(), dt), dt, self.device)

    def _draw(self, kind, shape, dt):
        acc = np.float64 if dt is _dt.fp64 else np.float32
        if kind == "normal":
            return self._rng.standard_normal(size=shape, dtype=acc)
        return self._rng.random(size=shape, dtype=acc)

    # -- public draws ------------------------------------------------------------
    def normal(self, shape, mean=0.0, std=1.0, dtype="fp32"):
        """Normal samples N(mean, std^2), as `numpy.random.Generator.normal`."""
        dt = _float_dtype("normal", dtype)
        if std < 0:
            raise ValueError(f"[normal] std must be non-negative, got {std}")
        shape = _shape("normal", shape)

        def draw():
            r = self._draw("normal", shape, dt)
            if std != 1.0:
                r = r * r.dtype.type(std)
            if mean != 0.0:
                r = r + r.dtype.type(mean)
            return r
        return self._op("normal", draw, dt)

    def uniform(self, shape, low=0.0, high=1.0, dtype="fp32"):
        """Uniform samples on [low, high), as `numpy.random.Generator.uniform`.
        In bf16/fp16 the rounding of a value just below `high` can give `high`."""
        dt = _float_dtype("uniform", dtype)
        if not low <= high:
            raise ValueError(f"[uniform] needs low <= high, got low={low}, high={high}")
        shape = _shape("uniform", shape)

        def draw():
            r = self._draw("uniform", shape, dt)
            t = r.dtype.type
            return r * t(high - low) + t(low)
        return self._op("uniform", draw, dt)

    def random(self, shape=(), dtype="fp32"):
        """Uniform samples on [0, 1), as `numpy.random.Generator.random`. In bf16 and
        fp16 the fp32 draw is rounded *down* to the dtype's grid so that 1.0 never
        appears (round-to-nearest would give 1.0 for draws just below it)."""
        dt = _float_dtype("random", dtype)
        shape = _shape("random", shape)
        xp = self.device.backend.xp

        def draw():
            r = self._draw("uniform", shape, dt)
            if dt.itemsize < 4:
                # 2**m steps below 1.0, where m is the dtype's significand (8 or 11
                # bits): exactly representable, and floor keeps them below 1.
                m = 8 if dt is _dt.bf16 else 11
                r = xp.floor(r * np.float32(2 ** m)) * np.float32(2.0 ** -m)
            return r
        return self._op("random", draw, dt)

    def integers(self, low, high=None, shape=(), dtype="int64"):
        """Integers on [low, high) (or [0, low) when `high` is None), as
        `numpy.random.Generator.integers`."""
        dt = _dt.get_dtype(dtype)
        if dt.kind not in "iu":
            raise DTypeError(f"[integers] dtype must be an integer dtype, got {dt.name}")
        if high is None:
            low, high = 0, low
        low, high = operator.index(low), operator.index(high)
        info = np.iinfo(dt.np_storage)
        if low >= high:
            raise ValueError(f"[integers] needs low < high, got low={low}, high={high}")
        if low < info.min or high - 1 > info.max:
            raise ValueError(f"[integers] range [{low}, {high}) does not fit {dt.name} "
                             f"([{info.min}, {info.max}])")
        shape = _shape("integers", shape)
        return self._op("integers",
                        lambda: self._rng.integers(low, high, size=shape, dtype=np.int64), dt)

    def permutation(self, n_or_tensor):
        """A random permutation of arange(n) (int64), or of a tensor's first axis
        (differentiable: a `take` along axis 0), as `numpy.random.Generator.permutation`."""
        if isinstance(n_or_tensor, Tensor):
            x = n_or_tensor
            if x.ndim == 0:
                raise ShapeError("[permutation] cannot permute a 0-d tensor")
            if x.device is not self.device:
                from .errors import DeviceError
                raise DeviceError(f"[permutation] tensor is on {x.device}, the generator on "
                                  f"{self.device}")
            from .ops.indexing import take
            return take(x, self.permutation(x.shape[0]), axis=0)
        n = operator.index(n_or_tensor)
        if n < 0:
            raise ValueError(f"[permutation] n must be non-negative, got {n}")
        xp = self.device.backend.xp

        def draw():
            if xp is np:
                return self._rng.permutation(n).astype(np.int64)
            # sorting random keys: an unbiased shuffle on any device
            return xp.argsort(self._rng.random(size=(n,), dtype=np.float64)).astype(np.int64)
        return self._op("permutation", draw, _dt.int64)

    def bernoulli(self, p, shape=None, dtype="bool"):
        """True with probability `p` (a number in [0, 1] or a tensor of
        probabilities broadcast to `shape`), as `torch.bernoulli` but returning bool
        unless `dtype` says otherwise."""
        dt = _dt.get_dtype(dtype)
        if isinstance(p, Tensor):
            shape = p.shape if shape is None else shape
            u = self.random(shape, dtype=_dt.fp64 if p.dtype is _dt.fp64 else _dt.fp32)
            out = u < p
        else:
            p = float(p)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"[bernoulli] p must be in [0, 1], got {p}")
            out = self.random(() if shape is None else shape) < p
        return out if dt is _dt.bool_ else out.astype(dt)


# -- the default generators ------------------------------------------------------
class _Defaults:
    """The process-wide seed and one default generator per device, created on
    first use (so seeding works before or after a GPU is first touched)."""
    seed = None
    gens = {}


def manual_seed(seed):
    """Seed the default generators of every device (as `torch.manual_seed`); returns
    the default generator of the default device."""
    _Defaults.seed = operator.index(seed)
    _Defaults.gens = {}
    return default_generator()



def default_generator(device=None):
    """The default generator of `device` (default: the default device)."""
    dev = get_device(device)
    g = _Defaults.gens.get(dev)
    if g is None:
        g = _Defaults.gens[dev] = Generator(_Defaults.seed, dev)
    return g


def _shape_args(op, shape):
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        return _shape(op, shape[0])
    return _shape(op, shape)


def _gen(device, seed, generator):
    if generator is not None:
        return generator
    if seed is not None:
        return Generator(seed, device)
    return default_generator(device)


def randn(*shape, dtype=None, device=None, seed=None, generator=None, requires_grad=False):
    """Standard normal samples, as `torch.randn`: `randn(2, 3)` or `randn((2, 3))`.
    `seed` draws from a fresh generator with that seed (reproducible); otherwise the
    device's default generator (see `manual_seed`) is used.

    >>> import tessera as ts
    >>> from tessera.random import randn
    >>> randn(2, 3, seed=0, device="cpu").shape
    (2, 3)
    """
    s = _shape_args("randn", shape)
    t = _gen(device, seed, generator).normal(s, dtype=_float_dtype("randn", dtype))
    return t.requires_grad_(True) if requires_grad else t


def rand(*shape, dtype=None, device=None, seed=None, generator=None, requires_grad=False):
    """Uniform samples on [0, 1), as `torch.rand`; arguments as `randn`."""
    s = _shape_args("rand", shape)
    t = _gen(device, seed, generator).random(s, dtype=_float_dtype("rand", dtype))
    return t.requires_grad_(True) if requires_grad else t
