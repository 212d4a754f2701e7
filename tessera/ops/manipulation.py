"""Joining and repeating: concat, stack, unstack, split, tile, repeat (stub: being written)."""
__all__ = []
