"""einsum (stub: being written)."""
__all__ = []
