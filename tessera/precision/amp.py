"""Dynamic loss scaling for fp16/bf16 training (`tessera.amp.GradScaler`), as
`torch.amp.GradScaler`: multiply the loss by `scale` before backward so that small
gradients do not flush to zero in fp16; before the optimizer step divide the
gradients by `scale`, and if any is NaN/Inf skip the step and multiply the scale
by `backoff_factor`; after `growth_interval` clean steps in a row multiply it by
`growth_factor`.

    >>> import tessera as ts
    >>> w = ts.nn.Parameter(ts.ones((3,)))
    >>> opt = ts.optim.SGD([w], lr=0.1)
    >>> scaler = ts.amp.GradScaler(init_scale=1024.0)
    >>> scaler.scale(ts.sum(w * w)).backward()
    >>> scaler.step(opt); scaler.update()
    >>> w.tolist()
    [0.800000011920929, 0.800000011920929, 0.800000011920929]
"""
from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..errors import TesseraError
from ..ops import elementwise as ew, reduce as rd

__all__ = ["GradScaler"]


class GradScaler:
    """Loss scaler. `enabled=False` makes every method a pass-through."""

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if not (growth_factor > 1.0 and 0.0 < backoff_factor < 1.0 and init_scale > 0):
            raise ValueError(f"[GradScaler] needs growth_factor > 1, 0 < backoff_factor < 1 and "
                             f"init_scale > 0; got {growth_factor}, {backoff_factor}, {init_scale}")
        self._scale = float(init_scale)
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        self.growth_interval, self.enabled = int(growth_interval), enabled
        self._good_steps = 0
        self._unscaled = {}   # id(optimizer) -> found_inf, for the current iteration
        self._found_inf = False
        self.skipped_steps = 0

    def get_scale(self):
        return self._scale if self.enabled else 1.0

    def scale(self, loss):
        """loss * scale (in the loss's dtype's arithmetic; the scale is a weak scalar)."""
        return loss * self._scale if self.enabled else loss

    def unscale_(self, optimizer):
        """Divide the gradients of `optimizer`'s parameters by the scale (once per step)
        and record whether any of them is not finite."""
        if not self.enabled or id(optimizer) in self._unscaled:
            return
        inv = 1.0 / self._scale
        found = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad * inv
                    p.grad = g if g.dtype is p.grad.dtype else g.astype(p.grad.dtype)
                    if not found and not bool(rd.all(ew.isfinite(p.grad))):
                        found = True
        self._unscaled[id(optimizer)] = found
        self._found_inf = self._found_inf or found

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step() unless a gradient is not finite (then the step is skipped)."""
        if not self.enabled:
            return optimizer.step(*args, **kwargs)
        self.unscale_(optimizer)
        if self._unscaled[id(optimizer)]:
            self.skipped_steps += 1
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        """Adjust the scale after the iteration's steps."""
        if not self.enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale)
        elif self._found_inf:
            self._scale *= self.backoff_factor
            self._good_steps = 0
        else:
            self._good_steps += 1
            if self._good_steps >= self.growth_interval:
                self._scale *= self.growth_factor
                self._good_steps = 0
        self._unscaled.clear()
        self._found_inf = False

    def state_dict(self):
        return {"scale": self._scale, "growth_factor": self.growth_factor,
                "backoff_factor": self.backoff_factor, "growth_interval": self.growth_interval,
                "good_steps": self._good_steps}

    def load_state_dict(self, state):
        try:
            self._scale = float(state["scale"])
            self.growth_factor = float(state["growth_factor"])
            self.backoff_factor = float(state["backoff_factor"])
            self.growth_interval = int(state["growth_interval"])
            self._good_steps = int(state["good_steps"])
        except KeyError as e:
            raise TesseraError(f"[GradScaler.load_state_dict] missing key {e}") from None

    def __repr__(self):
        return f"GradScaler(scale={self._scale}, enabled={self.enabled})"
