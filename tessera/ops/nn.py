"""Neural-network functions (stub: being written)."""
__all__ = []
