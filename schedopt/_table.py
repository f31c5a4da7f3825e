"""Plain fixed-width text tables, as the command line and the metrics print them."""

from __future__ import annotations


def format_table(header: list[str], rows: list[list], float_format: str = ".6g") -> str:
    """A fixed-width text table: a header, a rule of dashes, then one line per row; floats
    are written with ``float_format``, everything else with ``str``.

    >>> print(format_table(["schedule", "kl"], [["edm", 0.0123456789], ["cosine", 1.5]]))
    schedule  kl
    --------  ---------
    edm       0.0123457
    cosine    1.5
    """
    cells = [[str(h) for h in header]] + [
        [format(v, float_format) if isinstance(v, float) else str(v) for v in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
