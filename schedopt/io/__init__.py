"""Input/output: atomic files, schedule cards, checkpoints and exporters."""

from .atomic import atomic_write_bytes, atomic_write_json

__all__ = ["atomic_write_bytes", "atomic_write_json"]
