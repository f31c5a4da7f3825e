"""The constant-rate criterion of Okada et al. (Constant Rate Scheduling) as an objective for
the optax loop.

On the schedule's ``num_steps``-step grid (its positive levels ``lam_0 < ... ``, see
:func:`schedopt.schedules.grid_times`) each interval ``j`` costs
``c_j = D_j^(xi/2) |du_j|^(1 - xi)`` (= ``v^xi |du|``; ``sqrt(D_j)`` for ``xi = 1``), with
``D_j`` the discrepancy measure between its two levels. The loss is the squared
coefficient of variation of the costs,

    L = K sum_j c_j^2 / (sum_j c_j)^2 - 1 >= 0,

zero exactly when every step carries the same cost: the grid of the direct construction
(:func:`schedopt.constant_rate.constant_rate_schedule`), which this reaches by gradient
descent on any learnable schedule instead of by integrating and inverting.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from .._checks import check_choice, check_positive_int
from ..constant_rate.measures import AbstractMeasure
from ..constant_rate.speed import VARIABLES, check_xi, step_costs
from ..schedules.base import FINALS, AbstractSchedule, grid_times
from .base import AbstractObjective


class ConstantRate(AbstractObjective):
    """Spread of the per-step discrepancy ``v^xi |du|`` over an ``num_steps``-step grid.

    Deterministic (ignores ``key``): sample-based measures hold fixed sample banks.

    >>> import jax, jax.numpy as jnp
    >>> from schedopt.constant_rate import GaussianFrechet, constant_rate_schedule
    >>> from schedopt.schedules import EDM
    >>> measure = GaussianFrechet(jnp.array([0.05, 0.5, 2.0]))
    >>> objective = ConstantRate(measure, num_steps=8)
    >>> direct = constant_rate_schedule(measure, num_points=257)
    >>> bool(objective(direct) < 0.01 < objective(EDM()))
    True
    """

    name: ClassVar[str] = "constant-rate"
    measure: AbstractMeasure
    num_steps: int = eqx.field(static=True, default=10)
    xi: float = eqx.field(static=True, default=1.0, converter=check_xi)
    variable: str = eqx.field(static=True, default="alpha")
    final: str = eqx.field(static=True, default="zero")

    def __check_init__(self):
        if not isinstance(self.measure, AbstractMeasure):
            raise ValueError(
                f"`measure` must be an AbstractMeasure, got {type(self.measure).__name__}"
            )
        check_positive_int("num_steps", self.num_steps)
        check_choice("variable", self.variable, VARIABLES)
        check_choice("final", self.final, FINALS)
        minimum = 3 if self.final == "zero" else 2
        if self.num_steps < minimum:
            raise ValueError(
                f"`num_steps` must be >= {minimum} with final={self.final!r} (at least two "
                f"intervals between positive levels to compare), got num_steps={self.num_steps}"
            )

    def grid_logsnrs(self, schedule: AbstractSchedule) -> Array:
        """The positive levels of the sampling grid, noisy first (``lam(t_k)``)."""
        return schedule.logsnr(grid_times(self.num_steps, self.final))

    def step_costs(self, schedule: AbstractSchedule) -> Array:
        """``c_j = v^xi |du|`` of every interval of the grid (noisy first)."""
        lam = self.grid_logsnrs(schedule)
        return step_costs(lam, self.measure.pairwise(lam), self.xi, self.variable)

    def __call__(self, schedule, key=None):
        del key
        costs = self.step_costs(schedule)
        k = costs.shape[0]
        return k * jnp.sum(costs**2) / jnp.sum(costs) ** 2 - 1.0

    def describe(self) -> dict:
        return {
            "objective": self.name,
            "num_steps": self.num_steps,
            "xi": self.xi,
            "variable": self.variable,
            "final": self.final,
            "measure": self.measure.describe(),
        }
