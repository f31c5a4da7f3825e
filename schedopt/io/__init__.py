"""Input/output: atomic files, schedule cards, checkpoints and exporters."""

from .atomic import atomic_write_bytes, atomic_write_json
from .card import (
    CARD_VERSION,
    card_process,
    card_schedule,
    load_card,
    make_card,
    regrid_card,
    save_card,
    validate_card,
)
from .checkpoint import OptimizationCheckpointer, load_schedule, save_schedule

__all__ = [
    "CARD_VERSION",
    "OptimizationCheckpointer",
    "atomic_write_bytes",
    "atomic_write_json",
    "card_process",
    "card_schedule",
    "load_card",
    "load_schedule",
    "make_card",
    "regrid_card",
    "save_card",
    "save_schedule",
    "validate_card",
]
