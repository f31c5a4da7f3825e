"""Speeds of distributional change and the constant-rate schedules they define (Okada
et al., Constant Rate Scheduling).

A discrepancy measure ``D`` tabulated on a grid of logSNRs ``lam_0 > ... > lam_M``
(clean to noisy) gives the speed per unit of a variable ``u`` on each interval,
``v_j = sqrt(D(lam_j, lam_{j+1})) / |u_{j+1} - u_j|``. The schedule solves
``du/dt ∝ v(u)^(-xi)``: ``t(u) = int v^xi du / total``, i.e. at the grid nodes
``T_j = sum_{i<j} v_i^xi |du_i| / total``, inverted monotonically with PCHIP
(:func:`schedopt._interp.pchip`). ``xi = 1`` is constant rate: every step of a sampling
grid ``t_k = k / N`` carries the same ``sqrt(D)``, and ``t(u)`` does not depend on the
variable. The same schedule is the training noise distribution (``t ~ U(0, 1)``), whose
density in ``u`` is ``∝ v^xi``.

The variable is Okada et al.'s VP signal scale ``alpha = sqrt(sigmoid(lam))`` by default, or
``"logsnr"``; only ``xi != 1`` tells them apart.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import (
    check_choice,
    check_finite_float,
    check_positive_int,
    check_sigma_range,
    check_strictly_decreasing,
    is_concrete,
)
from .._interp import pchip
from ..schedules.learnable import AbstractKnotSchedule, MonotoneCubic, PiecewiseLinear
from .measures import AbstractMeasure, sigmoid_difference

VARIABLES = ("alpha", "logsnr")
SCHEDULE_FAMILIES: dict[str, type[AbstractKnotSchedule]] = {
    "monotone-cubic": MonotoneCubic,
    "piecewise-linear": PiecewiseLinear,
}
#: Every interval keeps at least this share of ``t``, so ``T`` is strictly increasing
#: (and the schedule strictly monotone) even where the measured speed is zero.
MIN_SHARE = 1e-6


def speed_variable(logsnr: ArrayLike, variable: str = "alpha") -> Array:
    """The variable ``u`` speeds are measured in: VP ``alpha = sqrt(sigmoid(lam))`` or ``lam``.

    >>> round(float(speed_variable(0.0, "alpha")), 4), float(speed_variable(0.0, "logsnr"))
    (0.7071, 0.0)
    """
    check_choice("variable", variable, VARIABLES)
    lam = jnp.asarray(logsnr, dtype=jnp.result_type(float))
    return jnp.sqrt(jax.nn.sigmoid(lam)) if variable == "alpha" else lam


def variable_steps(logsnrs: Float[ArrayLike, " m"], variable: str = "alpha") -> Array:
    """``|u_{j+1} - u_j|`` between consecutive logSNRs, without float32 cancellation
    (``d alpha = d(alpha^2) / (alpha_a + alpha_b)``).

    >>> variable_steps(jnp.array([1.0, 0.0, -2.0]), "logsnr")
    Array([1., 2.], dtype=float32)
    """
    check_choice("variable", variable, VARIABLES)
    lam = jnp.asarray(logsnrs, dtype=jnp.result_type(float))
    la, lb = lam[:-1], lam[1:]
    if variable == "logsnr":
        return jnp.abs(la - lb)
    alpha = jnp.sqrt(jax.nn.sigmoid(lam))
    return jnp.abs(sigmoid_difference(la, lb)) / (alpha[:-1] + alpha[1:])


def check_xi(xi) -> float:
    """``xi`` as a float, or a ``ValueError`` unless it is finite and ``>= 0``."""
    value = check_finite_float("xi", xi)
    if value < 0:
        raise ValueError(f"`xi` must be >= 0, got xi={xi!r}")
    return value


def step_costs(
    logsnrs: Float[ArrayLike, " m"],
    discrepancies: Float[ArrayLike, " m-1"],
    xi: float = 1.0,
    variable: str = "alpha",
) -> Float[Array, " m-1"]:
    """Per-interval increments of ``t``, unnormalised: ``D^(xi/2) |du|^(1 - xi)`` = ``v^xi |du|``.

    >>> step_costs(jnp.array([1.0, 0.0]), jnp.array([4.0]), xi=1.0)
    Array([2.], dtype=float32)
    """
    du = variable_steps(logsnrs, variable)
    d = jnp.maximum(jnp.asarray(discrepancies, du.dtype), 0.0)
    if xi == 1.0:
        return jnp.sqrt(d)
    return jnp.power(d, 0.5 * xi) * jnp.power(du, 1.0 - xi)


class Speed(eqx.Module):
    """A speed tabulated on a logSNR grid (clean to noisy), with its schedule.

    ``discrepancies[j] = D(logsnrs[j], logsnrs[j + 1])``.

    >>> from schedopt.constant_rate import GaussianFrechet
    >>> speed = tabulate_speed(GaussianFrechet(jnp.array([0.1, 4.0])), num_points=65)
    >>> t = speed.cumulative()
    >>> float(t[0]), float(t[-1])
    (0.0, 1.0)
    """

    logsnrs: Float[Array, " m"]
    discrepancies: Float[Array, " m-1"]
    variable: str = eqx.field(static=True, default="alpha")

    def __check_init__(self):
        check_strictly_decreasing("logsnrs", self.logsnrs)
        check_choice("variable", self.variable, VARIABLES)
        if self.discrepancies.shape != (self.logsnrs.shape[0] - 1,):
            raise ValueError(
                f"`discrepancies` must have shape ({self.logsnrs.shape[0] - 1},) for "
                f"{self.logsnrs.shape[0]} levels, got {self.discrepancies.shape}"
            )
        if is_concrete(self.discrepancies):
            d = np.asarray(self.discrepancies)
            if not np.all(np.isfinite(d)) or np.any(d < 0):
                raise ValueError(
                    "`discrepancies` must be finite and >= 0; got values in "
                    f"[{d.min()!r}, {d.max()!r}]"
                )
            if not np.any(d > 0):
                raise ValueError("`discrepancies` are all zero: the measure sees no change")

    @property
    def midpoints(self) -> Float[Array, " m-1"]:
        """logSNR at the middle of each interval."""
        return 0.5 * (self.logsnrs[:-1] + self.logsnrs[1:])

    @property
    def steps(self) -> Float[Array, " m-1"]:
        """``|du|`` of each interval in the speed variable."""
        return variable_steps(self.logsnrs, self.variable)

    @property
    def values(self) -> Float[Array, " m-1"]:
        """Speed per unit of the variable on each interval, ``sqrt(D) / |du|``."""
        return jnp.sqrt(self.discrepancies) / self.steps

    def length(self) -> Array:
        """Total length ``sum_j sqrt(D_j)`` (independent of the variable)."""
        return jnp.sum(jnp.sqrt(self.discrepancies))

    def increments(self, xi: float = 1.0) -> Float[Array, " m-1"]:
        """Share of ``t`` each interval gets, ``∝ v^xi |du|``, floored at ``MIN_SHARE``."""
        inc = step_costs(self.logsnrs, self.discrepancies, check_xi(xi), self.variable)
        inc = inc / jnp.sum(inc)
        inc = jnp.maximum(inc, MIN_SHARE)
        return inc / jnp.sum(inc)

    def cumulative(self, xi: float = 1.0) -> Float[Array, " m"]:
        """``t`` at each grid level: 0 at the clean end, exactly 1 at the noisy end."""
        inc = self.increments(xi)
        cum = jnp.concatenate([jnp.zeros((1,), inc.dtype), jnp.cumsum(inc)])
        return cum.at[-1].set(1.0)

    def logsnr_at(self, t: ArrayLike, xi: float = 1.0) -> Array:
        """The constant-rate schedule ``lam(t)``: PCHIP through ``(T_j, lam_j)`` (monotone
        inversion of the cumulative). Jit-able and differentiable in the discrepancies."""
        return pchip(self.cumulative(xi), self.logsnrs, jnp.clip(jnp.asarray(t), 0.0, 1.0))

    def noise_levels(self, num_steps: int, xi: float = 1.0, final: str = "zero") -> Array:
        """An ``num_steps``-step sampling grid of noise levels (see ``schedules.grid``)."""
        from ..schedules.base import grid

        return grid(self.schedule(xi), num_steps, final)

    def schedule(self, xi: float = 1.0, family: str = "monotone-cubic") -> AbstractKnotSchedule:
        """The schedule as a learnable knot family with knots at ``T_j`` and values
        ``lam_j`` (``"monotone-cubic"``: the same PCHIP as :meth:`logsnr_at`).

        It serves both roles: sampling grids ``t_k = 1 - k / N`` and, pushed forward from
        ``t ~ U(0, 1)``, the training noise distribution.
        """
        check_choice("family", family, tuple(SCHEDULE_FAMILIES))
        knots = np.asarray(self.cumulative(xi), dtype=np.float64)
        knots[0], knots[-1] = 0.0, 1.0
        return SCHEDULE_FAMILIES[family].from_logsnr_values(
            self.logsnrs, knots=tuple(float(k) for k in knots)
        )

    def logsnr_density(self, logsnr: ArrayLike, xi: float = 1.0) -> Array:
        """Density of ``lam`` under the training distribution, piecewise constant on the
        grid: ``share_j / |dlam_j|`` (``∝ v^xi |du/dlam|``); 0 outside the range."""
        lam = jnp.asarray(logsnr, dtype=self.logsnrs.dtype)
        inc = self.increments(xi)
        dens = inc / jnp.abs(jnp.diff(self.logsnrs))
        # logsnrs decrease: interval j holds lam_{j+1} <= lam <= lam_j
        j = jnp.clip(jnp.searchsorted(-self.logsnrs, -lam, side="right") - 1, 0, inc.shape[0] - 1)
        inside = (lam <= self.logsnrs[0]) & (lam >= self.logsnrs[-1])
        return jnp.where(inside, dens[j], 0.0)


def logsnr_grid(num_points: int, sigma_min: float = 0.002, sigma_max: float = 80.0) -> Array:
    """``num_points`` logSNRs uniform from ``-2 log sigma_min`` down to ``-2 log sigma_max``.

    >>> [round(float(x), 2) for x in logsnr_grid(3, 0.01, 100.0)]
    [9.21, 0.0, -9.21]
    """
    n = check_positive_int("num_points", num_points)
    if n < 2:
        raise ValueError(f"`num_points` must be >= 2, got num_points={num_points}")
    lo, hi = check_sigma_range(sigma_min, sigma_max)
    return jnp.linspace(-2.0 * np.log(lo), -2.0 * np.log(hi), n)


def tabulate_speed(
    measure: AbstractMeasure,
    *,
    num_points: int = 129,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    variable: str = "alpha",
    logsnrs: ArrayLike | None = None,
) -> Speed:
    """Evaluate ``measure`` on consecutive levels of a grid and return the :class:`Speed`.

    The grid is ``logsnrs`` if given (strictly decreasing), else ``num_points`` levels
    uniform in logSNR over ``[sigma_min, sigma_max]``.

    >>> from schedopt.constant_rate import GaussianFrechet
    >>> speed = tabulate_speed(GaussianFrechet(jnp.array([4.0])), num_points=9, variable="logsnr")
    >>> speed.values.shape
    (8,)
    """
    if not isinstance(measure, AbstractMeasure):
        raise ValueError(f"`measure` must be an AbstractMeasure, got {type(measure).__name__}")
    check_choice("variable", variable, VARIABLES)
    if logsnrs is None:
        lam = logsnr_grid(num_points, sigma_min, sigma_max)
    else:
        lam = jnp.asarray(logsnrs, dtype=jnp.result_type(float))
        check_strictly_decreasing("logsnrs", lam)
    discrepancies = eqx.filter_jit(lambda m, x: m.pairwise(x))(measure, lam)
    return Speed(lam, discrepancies, variable)


def constant_rate_schedule(
    measure: AbstractMeasure,
    *,
    xi: float = 1.0,
    num_points: int = 129,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    variable: str = "alpha",
    family: str = "monotone-cubic",
) -> AbstractKnotSchedule:
    """The direct construction in one call: tabulate the speed, integrate ``v^xi``, invert.

    >>> from schedopt.constant_rate import GaussianFrechet
    >>> s = constant_rate_schedule(GaussianFrechet(jnp.array([0.1, 4.0])), num_points=65)
    >>> round(float(s.noise_level(0.0)), 3), round(float(s.noise_level(1.0)), 1)
    (0.002, 80.0)
    """
    speed = tabulate_speed(
        measure,
        num_points=num_points,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        variable=variable,
    )
    return speed.schedule(xi, family)
