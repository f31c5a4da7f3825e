"""Williams et al. (Score-Optimal Diffusion Schedules) as an objective: the path energy of a
schedule in the metric of the score transport cost.

With ``Lambda(s)`` the path length of a :class:`~schedopt.score_optimal.CostTable`, a schedule
``t -> s(t)`` has energy ``E = int_0^1 (d Lambda(s(t)) / dt)^2 dt``. By Cauchy–Schwarz
``E >= (Lambda(s_max) - Lambda(s_min))^2``, with equality exactly for the constant-speed
schedule ``Lambda(s(t)) = linear in t`` — the paper's equal-cost schedule, the fixed point of
Algorithm 1. The objective returns the ratio ``E / (Delta Lambda)^2 >= 1`` (1 = optimal).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_int, is_concrete
from ..score_optimal.table import CostTable
from .base import AbstractObjective


class ScoreWork(AbstractObjective):
    """``E[s] / (Delta Lambda)^2``: the path energy of a schedule, normalised to 1 at the optimum.

    Deterministic (ignores ``key``): the denoiser was evaluated once, when ``table`` was
    estimated. The integral is a midpoint rule on ``num_quadrature`` points clustered at
    both ends (``t = (1 - cos(pi tau)) / 2``, ``tau`` uniform);
    ``d Lambda(s(t)) / dt`` comes from ``jax.jvp``. The schedule's noise range must lie
    inside the table's.

    >>> import jax, jax.numpy as jnp
    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.schedules import EDM
    >>> from schedopt.score_optimal import CorrectorCost
    >>> den = GaussianDenoiser(jnp.ones(1))
    >>> table = CostTable.estimate(CorrectorCost(), den, den.sample(jax.random.key(0), 1024),
    ...                            jax.random.key(1), num_intervals=64)
    >>> objective = ScoreWork(table)
    >>> bool(objective(EDM(rho=7.0)) > objective(table.schedule()) > 0.999)
    True
    """

    name: ClassVar[str] = "score-work"
    table: CostTable
    num_quadrature: int = eqx.field(static=True, default=1024)

    def __check_init__(self):
        if not isinstance(self.table, CostTable):
            raise ValueError(f"`table` must be a CostTable, got {type(self.table).__name__}")
        check_positive_int("num_quadrature", self.num_quadrature)

    def _check_range(self, schedule) -> None:
        lo, hi = schedule.sigma_min, schedule.sigma_max
        if is_concrete(lo) and is_concrete(hi) and is_concrete(self.table.log_levels):
            lo, hi = float(np.asarray(lo)), float(np.asarray(hi))
            t_lo, t_hi = self.table.sigma_min, self.table.sigma_max
            if lo < t_lo * (1 - 1e-5) or hi > t_hi * (1 + 1e-5):
                raise ValueError(
                    f"the schedule's noise range [{lo!r}, {hi!r}] must lie inside the cost "
                    f"table's [{t_lo!r}, {t_hi!r}]; estimate the table on a wider range"
                )

    def length_along(self, schedule, t):
        """``Lambda(s(t))`` (differentiable in ``t`` and the schedule's parameters)."""
        u = -0.5 * schedule.logsnr(t)
        u = jnp.clip(u, self.table.log_levels[0], self.table.log_levels[-1])
        return self.table.length(jnp.exp(u))

    def __call__(self, schedule, key=None):
        self._check_range(schedule)
        return _energy(self, schedule)

    def _energy(self, schedule):
        n = self.num_quadrature
        # midpoint rule in tau with t = (1 - cos(pi tau)) / 2: nodes cluster at both ends,
        # where schedules are steep (the end points are pinned)
        tau = (jnp.arange(n, dtype=self.table.log_levels.dtype) + 0.5) / n
        t = 0.5 * (1.0 - jnp.cos(jnp.pi * tau))
        weight = 0.5 * jnp.pi * jnp.sin(jnp.pi * tau) / n
        _, speed = jax.jvp(lambda tt: self.length_along(schedule, tt), (t,), (jnp.ones_like(t),))
        ends = self.length_along(schedule, jnp.array([0.0, 1.0], dtype=t.dtype))
        return jnp.sum(weight * speed**2) / (ends[1] - ends[0]) ** 2

    def describe(self) -> dict:
        return {
            "objective": self.name,
            "num_quadrature": self.num_quadrature,
            "table": self.table.describe(),
        }


@eqx.filter_jit
def _energy(objective: ScoreWork, schedule):
    return objective._energy(schedule)
