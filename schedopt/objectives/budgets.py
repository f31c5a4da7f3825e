"""One fit for every NFE: one continuous shape, a learned range per budget, and an objective
that sums a loss over the budgets.

:class:`BudgetRanges` holds a base schedule (the shared spacing, learnable) and one
:class:`~schedopt.schedules.RangedSchedule` range per number of steps; ``at(i)`` is the
schedule of budget ``i`` and ``for_steps(n)`` that of ``n`` steps (the nearest budget in
``log n`` when ``n`` is not one of them). :class:`SumOverBudgets` evaluates one objective
per budget on its schedule and sums ``log(loss_i)`` (default: every budget's relative
improvement counts the same, whatever its scale; losses are floored at the smallest normal
number, so an unbiased MMD that dips below 0 does not give NaN) or the plain losses.

>>> import jax
>>> from schedopt.gaussian import Spectrum
>>> from schedopt.objectives import GaussianKL
>>> from schedopt.schedules import EDM, MonotoneCubic
>>> ranges = BudgetRanges.from_schedule(MonotoneCubic.from_schedule(EDM(), 8), (3, 5, 10))
>>> objective = SumOverBudgets(tuple(GaussianKL(Spectrum([1.0]), num_steps=n) for n in (3, 5, 10)))
>>> bool(jax.numpy.isfinite(objective(ranges, jax.random.key(0))))
True
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import check_choice, check_positive_int
from ..schedules.base import AbstractSchedule
from ..schedules.ranged import RangedSchedule
from .base import AbstractObjective

REDUCTIONS = ("log", "sum")


class BudgetRanges(eqx.Module):
    """A shared ``base`` spacing with a learnable range for each of ``num_steps``."""

    base: AbstractSchedule
    range_logits: Float[Array, "budgets 3"]
    num_steps: tuple[int, ...] = eqx.field(static=True)
    bounds: tuple[float, float] = eqx.field(static=True)
    gain: float = eqx.field(static=True, default=4.0)

    def __check_init__(self):
        if len(self.num_steps) < 1 or jnp.shape(self.range_logits) != (len(self.num_steps), 3):
            raise ValueError(
                f"`range_logits` must have shape ({len(self.num_steps)}, 3) for "
                f"num_steps={self.num_steps}, got {jnp.shape(self.range_logits)}"
            )

    @classmethod
    def from_schedule(
        cls,
        base: AbstractSchedule,
        num_steps,
        bounds: tuple[float, float] = (0.002, 80.0),
        sigma_range: tuple[float, float] | None = None,
        *,
        gain: float = 4.0,
    ) -> BudgetRanges:
        """Every budget starts as ``RangedSchedule.from_schedule(base, bounds, sigma_range)``.

        >>> from schedopt.schedules import EDM
        >>> BudgetRanges.from_schedule(EDM(), [3, 5]).range_logits.shape
        (2, 3)
        """
        steps = tuple(sorted({check_positive_int("num_steps", int(n)) for n in num_steps}))
        one = RangedSchedule.from_schedule(base, bounds, sigma_range, gain=gain)
        logits = jnp.tile(one.range_logits[None], (len(steps), 1))
        return cls(base, logits, steps, one.bounds, one.gain)

    def at(self, i: int) -> RangedSchedule:
        """The schedule of budget ``i`` (the ``i``-th of ``num_steps``)."""
        return RangedSchedule(self.base, self.range_logits[i], self.bounds, self.gain)

    def for_steps(self, n: int) -> RangedSchedule:
        """The schedule for ``n`` steps: its budget's, or the nearest budget's in ``log n``.

        >>> from schedopt.schedules import EDM
        >>> BudgetRanges.from_schedule(EDM(), [3, 10]).for_steps(4).family
        'ranged'
        """
        n = check_positive_int("num_steps", n)
        distance = np.abs(np.log(np.asarray(self.num_steps, float)) - np.log(n))
        return self.at(int(np.argmin(distance)))


class SumOverBudgets(AbstractObjective):
    """``sum_i log(objective_i(schedule_i))`` (or the plain sum), one objective per budget.

    ``schedule`` is a :class:`BudgetRanges` (budget ``i``'s schedule for ``objectives[i]``,
    which must have that many steps) or any schedule (the same for every budget).
    """

    name: ClassVar[str] = "budgets"
    objectives: tuple[AbstractObjective, ...]
    reduction: str = eqx.field(static=True, default="log")

    @property
    def host_loop(self) -> bool:
        """Whether any budget's objective steps from the host (see the base class)."""
        return any(o.host_loop for o in self.objectives)

    @property
    def runs_sampler(self) -> bool:
        return all(o.runs_sampler for o in self.objectives)

    def __check_init__(self):
        if not self.objectives or not all(
            isinstance(o, AbstractObjective) for o in self.objectives
        ):
            raise ValueError(
                f"`objectives` must be a non-empty tuple of objectives, got {self.objectives!r}"
            )
        check_choice("reduction", self.reduction, REDUCTIONS)

    def terms(self, schedule, key) -> Array:
        """Each budget's loss, in the order of ``objectives``."""
        values = []
        for i, objective in enumerate(self.objectives):
            part = schedule
            if isinstance(schedule, BudgetRanges):
                steps = getattr(objective, "num_steps", None) or objective.sampler.num_steps
                if steps != schedule.num_steps[i]:
                    raise ValueError(
                        f"objective {i} has {steps} steps but budget {i} of the schedule has "
                        f"{schedule.num_steps[i]}: list the objectives in the budgets' order "
                        f"{schedule.num_steps}"
                    )
                part = schedule.at(i)
            values.append(objective(part, None if key is None else jax.random.fold_in(key, i)))
        return jnp.stack(values)

    def __call__(self, schedule, key):
        values = self.terms(schedule, key)
        if self.reduction == "sum":
            return jnp.sum(values)
        return jnp.sum(jnp.log(jnp.maximum(values, jnp.finfo(values.dtype).tiny)))

    def describe(self) -> dict:
        return {
            "objective": self.name,
            "reduction": self.reduction,
            "budgets": [o.describe() for o in self.objectives],
        }
