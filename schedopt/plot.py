"""PNG plots of schedules (matplotlib, headless), written atomically."""

from __future__ import annotations

import io
import os

import jax.numpy as jnp
import numpy as np

from ._compile import fast_jit
from .io.atomic import atomic_write_bytes
from .schedules.base import AbstractSchedule, grid

#: Times at which the continuous curves are drawn.
CURVE_POINTS = 401


def schedule_curves(schedules: dict, num_steps: int, final: str = "zero") -> dict:
    """``name -> (grid levels, logSNR at CURVE_POINTS times)``: what
    :func:`plot_schedules` draws, as one program (compiled quickly: it runs once).

    >>> from schedopt.schedules import EDM
    >>> levels, logsnr = schedule_curves({"edm": EDM()}, 4)["edm"]
    >>> levels.shape, logsnr.shape
    ((5,), (401,))
    """
    t = jnp.linspace(0.0, 1.0, CURVE_POINTS)
    return _curves(dict(schedules), num_steps, final, t)


@fast_jit
def _curves(schedules: dict, num_steps: int, final: str, t):
    return {name: (grid(s, num_steps, final), s.logsnr(t)) for name, s in schedules.items()}


def plot_schedules(
    path: str | os.PathLike,
    schedules: dict[str, AbstractSchedule],
    num_steps: int,
    *,
    final: str = "zero",
    highlight: str | None = None,
    title: str = "",
) -> None:
    """Two panels: the ``num_steps``-step grids (log noise level per step) and the
    continuous logSNR curves; ``highlight`` is drawn thick and black.

    >>> import tempfile, pathlib
    >>> from schedopt.schedules import EDM
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "s.png"
    >>> plot_schedules(out, {"edm": EDM()}, 10)
    >>> out.stat().st_size > 0
    True
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    t = np.linspace(0.0, 1.0, CURVE_POINTS)
    curves = schedule_curves(schedules, num_steps, final)
    fig = Figure(figsize=(11, 4.2))
    ax_grid, ax_curve = fig.subplots(1, 2)
    for name in schedules:
        style = dict(color="black", linewidth=2.5, zorder=5) if name == highlight else {}
        levels, logsnr = (np.asarray(x) for x in curves[name])
        positive = levels > 0
        ax_grid.plot(
            np.arange(len(levels))[positive], levels[positive], "o-", ms=3, label=name, **style
        )
        ax_curve.plot(t, logsnr, label=name, **style)
    ax_grid.set_yscale("log")
    ax_grid.set_xlabel("step k")
    ax_grid.set_ylabel("noise level s_k (log scale)")
    ax_grid.set_title(f"{num_steps}-step grids (last step to s = 0 not shown)")
    ax_curve.set_xlabel("t (0 clean, 1 noisy)")
    ax_curve.set_ylabel("logSNR")
    ax_curve.set_title("continuous schedules")
    ax_curve.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    # fixed margins: tight_layout would lay the figure out (render it) once more
    fig.subplots_adjust(left=0.065, right=0.985, bottom=0.12, top=0.86 if title else 0.92)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())
