"""Graph capture, replay and IR dumps (the seed's `graph.dump_ir()`, section 7.5).

`g = tessera.graph.capture(fn, *args, **kwargs)` runs `fn` once and records every
op (with shapes, dtypes and source lines), every fused group and kernel, and every
in-place write. `g(*new_args)` replays the recorded steps on new inputs of the
same shapes/dtypes/devices without the Python front end (no dtype rules, no tape,
no Tensor objects in between); `@tessera.graph.trace` captures on the first call
per input signature and replays afterwards. `g.dump_ir()` prints the Graph IR,
Schedule IR and Tile IR as generic-form MLIR; `g.kernel_source(name)` the source
of a kernel named there; `g.trace_execution()` replays once and returns a
`tessera.profiler.Timeline` of every step, compile and cache hit.

What replay keeps (like `jax.jit` and CUDA graphs):
- Python control flow, `.item()`/`float(t)`/`.tolist()` reads and every non-tensor
  argument are frozen at capture: a different value of a non-tensor argument is an
  error, a data-dependent branch silently takes the captured path.
- Tensors the function reads but did not compute (parameters, closed-over tensors,
  constants from `zeros`/`ones`/`asarray`/`randn`) are captured by reference:
  in-place updates to them persist across replays; creation ops inside `fn` are
  not re-run (their values are constants; draw fresh noise with ops whose `fwd`
  draws, e.g. dropout). Rebinding a Python attribute (`model.w = new`) is not seen.
- Gradients: a backward pass inside `fn` is replayed (its ops are recorded); the
  `.grad` a leaf ends up holding is rebound after every replay. Zero or clear the
  gradients inside `fn`: accumulation into a `.grad` that existed before the
  capture adds to that captured tensor every time. Replay outputs are not on the
  autograd tape (`backward()` on them is not possible).
- Optimizer state must be updated in place to carry across replays. tessera.optim's
  SGD, Adam and AdamW do so (state tensors written in place, Adam's step count a
  tensor), so `loss.backward(); opt.step()` replays exactly, captured at any step;
  their hyperparameters (lr, ...) are frozen at capture. Hand-written state that is
  rebound out of place (`m = m * b1 + g` stored back into a dict) and Python step
  counters are frozen at their capture-time values; `capture` warns
  (`CaptureWarning`) when a dict or list still holds a tensor made inside it.
- Shapes are static: other shapes/dtypes/devices raise a clear error (`trace`
  captures a new graph per signature instead).
"""
from .api import Graph, capture, trace
from .capture import CaptureError, CaptureWarning

__all__ = ["Graph", "CaptureError", "CaptureWarning", "capture", "trace"]
