"""Lazy elementwise fusion: IR, lowering, C/CUDA code generation and runtimes."""
