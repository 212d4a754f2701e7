"""The autotuner's disk cache: $TESSERA_CACHE_DIR/autotune.json (beside the kernel
cache), one entry per (function, device, dtypes, shape bucket), so the next
process starts tuned. Writes are atomic (temp file + rename); a missing or
corrupt file reads as empty (the search simply runs again).

    >>> bucket([(3, 100), (1000,)])
    '4x128,1024'
"""
from __future__ import annotations

import json
import platform as _platform

from ..kernels import loader

_memory: dict = {}
_loaded_from = None


def path():
    return loader.cache_dir() / "autotune.json"


def bucket(shapes) -> str:
    """Each extent rounded up to a power of two: nearby shapes share one tuning."""
    return ",".join("x".join(str(1 << max(0, int(d) - 1).bit_length()) for d in s) or "scalar"
                    for s in shapes)


def device_key(device) -> str:
    if device.type == "cpu":
        model = _platform.processor() or _platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
        except OSError:
            pass
        from .space import cpu_count
        return f"cpu:{model}:{cpu_count()}"
    from ..kernels.launchers import _runtime
    return f"gpu:{_runtime.device_facts()['name']}:{loader.device_arch()}"


def make_key(fn_id, device, dtypes, shapes) -> str:
    return "|".join([fn_id, device_key(device), ",".join(dtypes) or "-", bucket(shapes)])


def _load():
    global _loaded_from
    p = str(path())
    if _loaded_from != p:  # a different TESSERA_CACHE_DIR: read that one
        _memory.clear()
        _loaded_from = p
        try:
            data = json.loads(path().read_text())
            if isinstance(data, dict):
                _memory.update(data)
        except (OSError, ValueError):
            pass
    return _memory


def get(key):
    return _load().get(key)


def put(key, entry):
    """Store an entry (merged with what other processes wrote meanwhile)."""
    mem = _load()
    mem[key] = entry
    try:
        data = json.loads(path().read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[key] = entry
    try:
        path().parent.mkdir(parents=True, exist_ok=True)
        loader._atomic_write(path(), json.dumps(data, sort_keys=True, indent=1).encode())
    except OSError:
        pass  # read-only cache: only costs a new search in the next process


def entries():
    return dict(_load())


def clear_memory():
    """Forget what was read (the next lookup reads the file again)."""
    global _loaded_from
    _memory.clear()
    _loaded_from = None
