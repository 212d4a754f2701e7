"""tessera's hand-written GPU kernels: templated CUDA/HIP sources (*.cu, compat.cuh,
reduce_common.cuh), their compiler and cache (`loader`), and the Python launchers that
run them on CuPy arrays (`launchers`). Importing this package needs neither CuPy nor CUDA.
"""
