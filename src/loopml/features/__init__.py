"""Feature store (placeholder while being built)."""
from loopml.features._pit import point_in_time_join

__all__ = ["point_in_time_join"]
