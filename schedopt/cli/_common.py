"""Helpers shared by the subcommands."""

from __future__ import annotations


def parse_floats(name: str, text: str) -> list[float]:
    """``"80,1.5,0"`` to floats; errors name the option and the bad item."""
    out = []
    for item in text.split(","):
        item = item.strip()
        try:
            out.append(float(item))
        except ValueError:
            raise ValueError(f"--{name} must be comma-separated numbers, got {item!r}") from None
    return out
