"""Complex parts: real, imag, conj, angle (stub: complex support is issue 10)."""
__all__ = []
