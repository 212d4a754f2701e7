"""The autotuner (the seed's section 7.2): `tessera.schedule.autotune(fn, *args)` and
`@schedule.hint(autotune=True)`.

Modules: `space` (the configurations tried: matmul tiles on the GPU, OpenMP threads
on the CPU, fusion modes), `measure` (CUDA events / host clock, OpenMP thread
count), `cache` (the disk cache keyed by function, device, dtypes and shape
bucket), `tuner` (the search and `TuneResult`).
"""
from .cache import bucket, device_key
from .measure import set_threads, time_ms
from .space import cpu_space, gpu_space, legal_tiles
from .tuner import AutotuneError, TuneResult, autotune, lookup

__all__ = ["autotune", "lookup", "TuneResult", "AutotuneError", "bucket", "device_key",
           "set_threads", "time_ms", "cpu_space", "gpu_space", "legal_tiles"]
