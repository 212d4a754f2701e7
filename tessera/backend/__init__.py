"""Backends own memory, kernels and host transfers for one kind of device.

Op code never asks "am I on the GPU?": it asks the tensor's device for its backend
and calls a method. `cpu` is NumPy (plus generated C kernels from fusion); `cuda`
is CuPy plus tessera's own kernels, on CUDA and on CuPy's ROCm build alike.
"""


def backend_for(device):
    if device.type == "cpu":
        from .cpu import CPU_BACKEND
        return CPU_BACKEND
    from .cuda import CudaBackend
    return CudaBackend.for_device(device.index)
