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
    save_figure(path, fig)


def plot_densities(
    path: str | os.PathLike,
    densities: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    highlight: str | None = None,
    title: str = "",
) -> None:
    """Training noise densities: ``name -> (logsnrs, density in logSNR)``, drawn against
    the noise level ``s = exp(-lam / 2)`` (log scale); ``highlight`` thick and black.

    >>> import tempfile, pathlib
    >>> lam = np.linspace(12.0, -8.0, 50)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "d.png"
    >>> plot_densities(out, {"uniform": (lam, np.full(50, 0.05))})
    >>> out.stat().st_size > 0
    True
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    for name, (logsnr, density) in densities.items():
        style = dict(color="black", linewidth=2.5, zorder=5) if name == highlight else {}
        ax.plot(np.exp(-0.5 * np.asarray(logsnr)), np.asarray(density), label=name, **style)
    ax.set_xscale("log")
    ax.set_xlabel("noise level s (log scale)")
    ax.set_ylabel("density of logSNR")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.13, top=0.9)
    save_figure(path, fig)


def save_figure(path: str | os.PathLike, fig, dpi: int = 110) -> None:
    """Write a matplotlib ``Figure`` to ``path`` as PNG, atomically (whole or not at all)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
