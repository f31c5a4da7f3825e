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

__all__ = [
    "CARD_VERSION",
    "atomic_write_bytes",
    "atomic_write_json",
    "card_process",
    "card_schedule",
    "load_card",
    "make_card",
    "regrid_card",
    "save_card",
    "validate_card",
]
