"""Searching and sorting: argsort, sort, nonzero, searchsorted, unique_* (stub: being written)."""
__all__ = []
