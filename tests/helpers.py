"""One-line op checks against references (tinygrad's helper_test_op, CuPy's
numpy_cupy_allclose): `check_op` compares a tessera op with a NumPy float64
reference, `check_grad` compares the tape's gradient with central finite
differences along a random direction (`check_grad_grad`: second derivatives), and
TOL is the one tolerance table.

`device=None` everywhere means the default device, which tests/conftest.py pins to the
test's own device (its `device` parameter, or the CPU for a `cpu_only` test).
"""
import numpy as np

import tessera as ts
from tessera.autograd.engine import grad


def _gpu_available():
    try:
        return ts.cuda_is_available()
    except Exception:
        return False


# The devices a test parametrized with `pytest.mark.parametrize("device", DEVICES)` runs on:
# for hypothesis tests, which cannot take the function-scoped `device` fixture.
DEVICES = ["cpu"] + (["cuda"] if _gpu_available() else [])


def per_device(values, subset):
    """Parameters (value, device) for a sweep parametrized by op name: every value on the
    CPU, the representative `subset` on each other device too (so a slow sweep does not run
    twice in full): `@pytest.mark.parametrize("name, device", per_device(NAMES, {...}))`."""
    missing = set(subset) - set(values)
    assert not missing, f"per_device: {sorted(missing)} not among the values"
    return [(v, d) for d in DEVICES for v in values if d == "cpu" or v in subset]

# (rtol, atol) per dtype: the error a correctly rounded op may show against a
# float64 reference, with headroom for a few chained roundings.
TOL = {
    "fp64": (1e-10, 1e-12),
    "fp32": (2e-5, 1e-6),
    "fp16": (5e-3, 1e-3),
    "bf16": (3e-2, 1e-2),
    "fp8_e4m3": (1.5e-1, 5e-2),
    "fp8_e5m2": (2.5e-1, 1e-1),
    "complex64": (2e-5, 1e-6),
    "complex128": (1e-10, 1e-12),
}


def tol(dtype):
    name = ts.dtypes.get_dtype(dtype).name
    return TOL.get(name, (0, 0))


def to_np64(t):
    """A tessera tensor as a NumPy array in float64 (complex128 / int64 / bool kept)."""
    a = t.numpy() if isinstance(t, ts.Tensor) else np.asarray(t)
    if a.dtype.kind in "f" or str(a.dtype) in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        return a.astype(np.float64)
    return a


def assert_close(actual, expected, dtype=None, rtol=None, atol=None, err_msg=""):
    a = to_np64(actual)
    e = np.asarray(expected)
    if dtype is None and isinstance(actual, ts.Tensor):
        dtype = actual.dtype
    r, t = tol(dtype) if dtype is not None else (1e-6, 1e-7)
    r = r if rtol is None else rtol
    t = t if atol is None else atol
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape} {err_msg}"
    if a.dtype.kind in "biu" and e.dtype.kind in "biu":
        np.testing.assert_array_equal(a, e, err_msg=err_msg)
    else:
        np.testing.assert_allclose(a, e.astype(a.dtype) if e.dtype.kind in "fc" else e,
                                   rtol=r, atol=t, equal_nan=True, err_msg=err_msg)


def rand(shape, dtype="fp32", device=None, low=-2.0, high=2.0, seed=0, requires_grad=False):
    rng = np.random.default_rng(seed)
    a = rng.uniform(low, high, size=shape)
    return ts.asarray(a, dtype=dtype, device=device, requires_grad=requires_grad), a


def check_op(ts_fn, np_fn, *arrays, dtype="fp32", device=None, rtol=None, atol=None, **kw):
    """Run `ts_fn` on tensors made from `arrays` and `np_fn` on the float64 arrays
    (cast through `dtype` first, so input rounding is not counted as op error)."""
    tins, nins = [], []
    for a in arrays:
        if isinstance(a, np.ndarray):
            t = ts.asarray(a, dtype=dtype if a.dtype.kind == "f" else None, device=device)
            tins.append(t)
            nins.append(to_np64(t))
        else:
            tins.append(a)
            nins.append(a)
    out = ts_fn(*tins, **kw)
    ref = np_fn(*nins, **kw)
    if isinstance(out, (tuple, list)):
        for o, r in zip(out, ref):
            assert_close(o, r, rtol=rtol, atol=atol)
    else:
        assert_close(out, ref, rtol=rtol, atol=atol)
    return out


def check_grad(fn, *arrays, eps=1e-6, rtol=1e-5, atol=1e-7, seed=0, device=None):
    """Directional gradient check in float64: <u, J v> from the tape (a VJP with a
    random cotangent u) against a central finite difference of <u, f> along a
    random direction v. Two forward passes per check, whatever the size."""
    rng = np.random.default_rng(seed)
    xs = [ts.asarray(a, dtype="fp64", device=device, requires_grad=True) for a in arrays]
    out = fn(*xs)
    u = rng.standard_normal(out.shape)
    out.backward(ts.asarray(u, dtype=out.dtype, device=device))
    vs = [rng.standard_normal(np.shape(a)) for a in arrays]
    analytic = sum(float(np.sum(to_np64(x.grad) * v)) for x, v in zip(xs, vs)
                   if x.grad is not None)

    def f_at(step):
        with ts.no_grad():
            ys = [ts.asarray(np.asarray(a, dtype=np.float64) + step * v, dtype="fp64", device=device)
                  for a, v in zip(arrays, vs)]
            return float(np.sum(to_np64(fn(*ys)) * u))
    numeric = (f_at(eps) - f_at(-eps)) / (2 * eps)
    assert np.isclose(analytic, numeric, rtol=rtol, atol=atol), \
        f"gradient mismatch: tape {analytic!r} vs finite difference {numeric!r}"
    return analytic, numeric


def check_grad_grad(fn, *arrays, eps=1e-5, seed=0, device=None):
    """Second derivatives: phi(x) = <r, J_f(x)^T u> differentiated by the tape
    (grad with create_graph, then grad again) vs a central difference of phi."""
    rng = np.random.default_rng(seed)
    xs = [ts.asarray(a, dtype="fp64", device=device, requires_grad=True) for a in arrays]
    out = fn(*xs)
    u = ts.asarray(rng.standard_normal(out.shape), dtype="fp64", device=device)
    rs = [rng.standard_normal(np.shape(a)) for a in arrays]
    vs = [rng.standard_normal(np.shape(a)) for a in arrays]

    def phi(ins, create_graph):
        gs = grad(fn(*ins), ins, grad_outputs=u, create_graph=create_graph, allow_unused=True)
        return sum(ts.sum(g * ts.asarray(r, device=device)) for g, r in zip(gs, rs)
                   if g is not None)
    p = phi(xs, True)
    assert p.requires_grad, "first gradient is not differentiable"
    ggs = grad(p, xs, allow_unused=True)
    analytic = sum(float(np.sum(to_np64(g) * v)) for g, v in zip(ggs, vs) if g is not None)

    def phi_at(step):
        ins = [ts.asarray(a + step * v, dtype="fp64", device=device, requires_grad=True)
               for a, v in zip(arrays, vs)]
        return float(phi(ins, False))
    numeric = (phi_at(eps) - phi_at(-eps)) / (2 * eps)
    assert np.isclose(analytic, numeric, rtol=1e-5, atol=1e-7), (analytic, numeric)


def check_grad_complex(fn, *arrays, eps=1e-6, rtol=1e-5, atol=1e-7, seed=0, device=None):
    """`check_grad` for complex inputs and/or outputs, under PyTorch's convention
    (for a real loss L the gradient of z = x + iy is dL/dx + i dL/dy). With a random
    cotangent u the loss is L = Re(sum(conj(u) * f)); the tape's gradient G must give
    dL along a direction v as Re(sum(conj(G) * v)). Each complex input is checked
    along a real direction and along an imaginary one (float64 / complex128)."""
    rng = np.random.default_rng(seed)

    def wide(a):
        a = np.asarray(a)
        return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)
    arrays = [wide(a) for a in arrays]
    xs = [ts.asarray(a, device=device, requires_grad=True) for a in arrays]
    out = fn(*xs)
    u = rng.standard_normal(out.shape)
    if out.dtype.is_complex:
        u = u + 1j * rng.standard_normal(out.shape)
    out.backward(ts.asarray(u, dtype=out.dtype, device=device))
    grads = [to_np64(x.grad) if x.grad is not None else np.zeros_like(a)
             for x, a in zip(xs, arrays)]

    def loss(vals):
        with ts.no_grad():
            ys = [ts.asarray(v, device=device) for v in vals]
            return float(np.real(np.sum(np.conj(u) * to_np64(fn(*ys)))))
    results = []
    for i, a in enumerate(arrays):
        kinds = (1.0, 1j) if a.dtype.kind == "c" else (1.0,)
        for k in kinds:
            v = rng.standard_normal(a.shape) * k
            plus = [b + eps * v if j == i else b for j, b in enumerate(arrays)]
            minus = [b - eps * v if j == i else b for j, b in enumerate(arrays)]
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            analytic = float(np.real(np.sum(np.conj(grads[i]) * v)))
            assert np.isclose(analytic, numeric, rtol=rtol, atol=atol), \
                (f"gradient mismatch for input {i} along a {'real' if k == 1.0 else 'imaginary'} "
                 f"direction: tape {analytic!r} vs finite difference {numeric!r}")
            results.append((analytic, numeric))
    return results


def shares_memory(a, b):
    """Whether two tensors' buffers overlap, asked of their device's array module
    (NumPy or CuPy)."""
    assert a.device == b.device, (a.device, b.device)
    return bool(a.device.backend.xp.shares_memory(a.data, b.data))


def host_spans(tl, cat=None, name=None):
    """A profile's spans of a category and/or name on the host lane: with device timing
    (CUDA events) each span also exists once on the device lane."""
    from tessera.profiler.timeline import HOST
    return [s for s in tl.filter(cat=cat, name=name) if s.tid == HOST]


def raises_op(exc, op, fn, *words):
    """`fn()` raises `exc` with a message tagged "[op]" that contains every word."""
    import pytest
    with pytest.raises(exc) as e:
        fn()
    msg = str(e.value)
    assert msg.startswith(f"[{op}]"), msg
    for w in words:
        assert w in msg, (w, msg)


def cuda_typed_cpu_device():
    """A device of type "cuda" on the NumPy backend (not interned, so no test's own): for
    the decisions tessera takes by device type (host-data checks, kernel-backed ops, the
    default device differing from the operands'), tested on any machine."""
    from tessera.backend.cpu import CPUBackend
    from tessera.device import Device
    dev = object.__new__(Device)
    dev.type, dev.index, dev._str, dev._backend = "cuda", 98, "cuda:98 (stand-in)", CPUBackend()
    return dev
