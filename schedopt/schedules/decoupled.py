"""Decoupled time inputs: the level the denoiser is told, learned apart from the level the
state moves through (``DecoupledTimes``).

A few-step sampler evaluates ``D(y, s_k)`` at the grid's levels ``s_k``. Its error at a
step can often be reduced by telling the network a slightly different level than the one
the state is at (Tong et al.'s LD3 learns the grid alone; Frankel et al.'s S4S-Alt and the
GAS solver also learn per-step time inputs). ``DecoupledTimes`` keeps a schedule's grid
(every level ``s`` the state moves through is ``schedule``'s) and tells the denoiser

    D(y, s exp(delta(log s))),   delta piecewise linear in log s,

with ``delta`` given by learnable ``offsets`` at ``len(offsets)`` knots spread evenly in
``log s`` over ``span`` (constant beyond it). ``delta`` is a function of the level, not of
the step index, so one fit serves every step count and the wrapper composes with
:class:`~schedopt.schedules.RangedSchedule` and the one-fit-for-every-NFE objective. All
offsets 0 is exactly ``schedule``. Every sampler in :mod:`schedopt.sampling` applies it
(:func:`schedopt.sampling.time_inputs`); the Gaussian closed forms and the exporters, which
see only the grid, refuse it.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import check_positive_int
from .base import AbstractSchedule


def _check_span(span) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in span)
    except (TypeError, ValueError):
        raise ValueError(f"`span` must be two noise levels (lo, hi), got span={span!r}") from None
    if not (0 < lo < hi < np.inf):
        raise ValueError(f"`span` must satisfy 0 < lo < hi < inf, got span={span!r}")
    return lo, hi


class DecoupledTimes(AbstractSchedule):
    """``schedule``'s grid; the denoiser is told ``s exp(delta(log s))`` (see the module).

    >>> from schedopt.schedules import EDM
    >>> s = DecoupledTimes.from_schedule(EDM(), num_knots=4)
    >>> float(s.denoiser_level(1.0)), bool(s.logsnr(0.3) == EDM().logsnr(0.3))
    (1.0, True)
    """

    family: ClassVar[str] = "decoupled"

    schedule: AbstractSchedule
    offsets: Float[Array, " k"]
    span: tuple[float, float] = eqx.field(static=True, converter=_check_span)

    def __check_init__(self):
        if not isinstance(self.schedule, AbstractSchedule):
            raise ValueError(
                f"`schedule` must be an AbstractSchedule, got {type(self.schedule).__name__}"
            )
        if isinstance(self.schedule, DecoupledTimes):
            raise ValueError("`schedule` is already a DecoupledTimes; wrap its inner schedule")
        if jnp.ndim(self.offsets) != 1 or jnp.shape(self.offsets)[0] < 2:
            raise ValueError(
                f"`offsets` must be a 1-D array of >= 2 knot values, got shape "
                f"{jnp.shape(self.offsets)}"
            )

    @classmethod
    def from_schedule(
        cls,
        schedule: AbstractSchedule,
        num_knots: int = 8,
        span: tuple[float, float] | None = None,
    ) -> DecoupledTimes:
        """``schedule`` with all offsets 0 (the same sampler) on ``num_knots`` knots over
        ``span`` (default: the schedule's own range).

        >>> from schedopt.schedules import EDM
        >>> DecoupledTimes.from_schedule(EDM(), 5).offsets.shape
        (5,)
        """
        if check_positive_int("num_knots", num_knots) < 2:
            raise ValueError(f"`num_knots` must be >= 2, got num_knots={num_knots}")
        if span is None:
            span = (float(schedule.sigma_min), float(schedule.sigma_max))
        return cls(schedule, jnp.zeros((num_knots,), jnp.result_type(float)), span)

    @property
    def logsnr_max(self):
        return self.schedule.logsnr_max

    @property
    def logsnr_min(self):
        return self.schedule.logsnr_min

    def logsnr(self, t: ArrayLike) -> Array:
        return self.schedule.logsnr(t)

    def noise_level(self, t: ArrayLike) -> Array:
        return self.schedule.noise_level(t)

    def logsnr_and_derivative(self, t: ArrayLike) -> tuple[Array, Array]:
        return self.schedule.logsnr_and_derivative(t)

    def log_offset(self, noise_level: ArrayLike) -> Array:
        """``delta(log s)``, elementwise; 0 at ``s = 0`` (a last step to the data).

        >>> from schedopt.schedules import EDM
        >>> s = DecoupledTimes(EDM(), jnp.array([0.0, 0.2]), (0.01, 100.0))
        >>> round(float(s.log_offset(1.0)), 6)  # halfway in log s between the two knots
        0.1
        """
        s = jnp.asarray(noise_level, jnp.result_type(float))
        positive = s > 0
        log_s = jnp.log(jnp.where(positive, s, 1.0))
        lo, hi = np.log(self.span[0]), np.log(self.span[1])
        knots = jnp.linspace(lo, hi, jnp.shape(self.offsets)[0], dtype=log_s.dtype)
        return jnp.where(positive, jnp.interp(log_s, knots, self.offsets), 0.0)

    def denoiser_level(self, noise_level: ArrayLike) -> Array:
        """The level the denoiser is told at state level ``s``: ``s exp(delta(log s))``."""
        s = jnp.asarray(noise_level, jnp.result_type(float))
        return s * jnp.exp(self.log_offset(s))


def is_decoupled(schedule) -> bool:
    """Whether ``schedule`` tells the denoiser levels other than its grid's."""
    return isinstance(schedule, DecoupledTimes)
