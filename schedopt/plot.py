"""PNG plots of schedules (matplotlib, headless), written atomically."""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io.atomic import atomic_write_bytes  # noqa: E402
from .schedules.base import AbstractSchedule, grid  # noqa: E402


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
    fig, (ax_grid, ax_curve) = plt.subplots(1, 2, figsize=(11, 4.2))
    t = jnp.linspace(0.0, 1.0, 401)
    for name, schedule in schedules.items():
        style = dict(color="black", linewidth=2.5, zorder=5) if name == highlight else {}
        levels = np.asarray(grid(schedule, num_steps, final))
        positive = levels > 0
        ax_grid.plot(
            np.arange(len(levels))[positive], levels[positive], "o-", ms=3, label=name, **style
        )
        ax_curve.plot(np.asarray(t), np.asarray(schedule.logsnr(t)), label=name, **style)
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
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
