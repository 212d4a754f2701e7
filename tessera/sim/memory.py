"""Simulated device memory: allocations with red zones, and fault injection.

Every buffer the simulated CuPy allocates (`empty`, `zeros`, `asarray`, ...) is
a NumPy byte buffer aligned to 256 bytes (as CuPy's pool aligns), with a red
zone of `REDZONE` bytes on each side filled with 0xFF. After each kernel launch
`rawmodule` checks the red zones of every array the launch was given: a kernel
that wrote past either end is reported with its name and the argument. Fresh
memory (`empty`) is filled with 0xFF too: NaN in every float format, -1 in
every integer, so a kernel that reads memory nobody wrote shows NaN (or -1)
in its result instead of stale zeros that happen to look right.

Results of NumPy computations (CuPy's own ufuncs and routines, emulated) adopt
NumPy's buffer instead: they have no red zones, and no kernel wrote them.
"""
from __future__ import annotations

import numpy as np

REDZONE = 64
ALIGN = 256
FILL = 0xFF


class Allocation:
    """One device allocation: `buf` the whole byte buffer (red zones included),
    `data` the user part, `device` the simulated device id."""

    __slots__ = ("buf", "data", "device", "guarded", "__weakref__")

    def __init__(self, nbytes, device, fill=True):
        nbytes = int(nbytes)
        raw = np.empty(nbytes + 2 * REDZONE + ALIGN, np.uint8)
        start = (-(raw.ctypes.data + REDZONE)) % ALIGN + REDZONE
        self.buf = raw[start - REDZONE:start + nbytes + REDZONE]
        self.buf[:REDZONE] = FILL
        self.buf[REDZONE + nbytes:] = FILL
        self.data = self.buf[REDZONE:REDZONE + nbytes]
        if fill:
            self.data[...] = FILL
        self.device = device
        self.guarded = True

    @classmethod
    def adopt(cls, arr, device):
        """An allocation around a NumPy array's own memory (no red zones)."""
        self = object.__new__(cls)
        self.buf = arr
        self.data = arr
        self.device = device
        self.guarded = False
        return self

    def redzone_damage(self):
        """None, or (side, first offset) of the first byte a kernel overwrote."""
        if not self.guarded:
            return None
        lo = self.buf[:REDZONE]
        hi = self.buf[REDZONE + self.data.size:]
        bad_lo = np.flatnonzero(lo != FILL)
        bad_hi = np.flatnonzero(hi != FILL)
        if bad_lo.size:
            return "before the start", int(REDZONE - bad_lo[0])
        if bad_hi.size:
            return "past the end", int(bad_hi[-1] + 1)
        return None

    def repair(self):
        self.buf[:REDZONE] = FILL
        self.buf[REDZONE + self.data.size:] = FILL


def fresh(shape, dtype, device, order="C", fill=True):
    """A new array of `shape`/`dtype` in a guarded allocation (0xFF-filled)."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    n = 1
    for s in shape:
        n *= s
    mem = Allocation(n * dtype.itemsize, device, fill)
    arr = mem.data.view(dtype).reshape(shape, order=order) if n else np.empty(shape, dtype)
    if order == "F" and n:
        arr = mem.data.view(dtype).reshape(shape[::-1]).T
    return mem, arr
