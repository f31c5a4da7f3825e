"""The central object: ``AbstractSchedule``, a strictly decreasing map ``t -> logSNR``.

``t in [0, 1]``; ``t = 0`` is the clean end (``lam(0) = logsnr_max``) and ``t = 1`` the
noisy end (``lam(1) = logsnr_min``), both exact. Everything else is derived:
the EDM noise level ``s = exp(-lam / 2)``, ``(alpha, sigma)`` through a process, time
derivatives through ``jax.jvp``, the inverse map through a bisection root-find with
implicit gradients, and the training noise density ``1 / |lam'(t)|``.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import check_choice, check_positive_int, check_sigma_range
from .processes import VP, AbstractProcess

FINALS = ("zero", "min")
_VP = VP()


class AbstractSchedule(eqx.Module):
    """A noise schedule: strictly decreasing logSNR ``lam(t)`` on ``t in [0, 1]``.

    Subclasses implement :meth:`logsnr` and the two endpoints. ``family`` is the registry
    name used by schedule cards and the command line.
    """

    family: ClassVar[str] = ""

    @property
    @abc.abstractmethod
    def logsnr_max(self) -> Array | float:
        """``lam(0)``, the clean end."""

    @property
    @abc.abstractmethod
    def logsnr_min(self) -> Array | float:
        """``lam(1)``, the noisy end."""

    @abc.abstractmethod
    def logsnr(self, t: ArrayLike) -> Array:
        """logSNR ``lam(t)``, elementwise over ``t``."""

    # ---- derived quantities -------------------------------------------------------

    @property
    def sigma_min(self) -> Array | float:
        """Smallest EDM noise level, ``exp(-logsnr_max / 2)``."""
        return jnp.exp(-0.5 * jnp.asarray(self.logsnr_max))

    @property
    def sigma_max(self) -> Array | float:
        """Largest EDM noise level, ``exp(-logsnr_min / 2)``."""
        return jnp.exp(-0.5 * jnp.asarray(self.logsnr_min))

    def noise_level(self, t: ArrayLike) -> Array:
        """EDM noise level ``s(t) = sigma / alpha = exp(-lam(t) / 2)`` (k-diffusion's sigma).

        >>> from schedopt.schedules import EDM
        >>> round(float(EDM().noise_level(1.0)), 3)
        80.0
        """
        return jnp.exp(-0.5 * self.logsnr(t))

    def alpha(self, t: ArrayLike, process: AbstractProcess = _VP) -> Array:
        """Signal scale ``alpha(t)`` under ``process`` (VP by default)."""
        return process.alpha(self.logsnr(t))

    def sigma(self, t: ArrayLike, process: AbstractProcess = _VP) -> Array:
        """Noise scale ``sigma(t)`` under ``process`` (VP by default)."""
        return process.sigma(self.logsnr(t))

    def logsnr_and_derivative(self, t: ArrayLike) -> tuple[Array, Array]:
        """``(lam(t), lam'(t))`` in one forward-mode pass (``jax.jvp``), elementwise.

        >>> from schedopt.schedules import LogSNRLinear
        >>> s = LogSNRLinear()
        >>> lam, dlam = s.logsnr_and_derivative(0.5)
        >>> bool(abs(dlam - (s.logsnr_min - s.logsnr_max)) < 1e-4)
        True
        """
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        return jax.jvp(self.logsnr, (t,), (jnp.ones_like(t),))

    def dlogsnr_dt(self, t: ArrayLike) -> Array:
        """Time derivative ``lam'(t) < 0``."""
        return self.logsnr_and_derivative(t)[1]

    def t_of_logsnr(self, logsnr: ArrayLike) -> Array:
        """Inverse map ``t(lam)``, by bisection with implicit gradients (optimistix).

        Differentiable with respect to ``logsnr`` and the schedule's parameters:
        ``dt/dlam = 1 / lam'(t)``.

        >>> from schedopt.schedules import EDM
        >>> s = EDM()
        >>> round(float(s.t_of_logsnr(s.logsnr(0.3))), 4)
        0.3
        """
        logsnr = jnp.asarray(logsnr, dtype=jnp.result_type(float))
        flat = logsnr.reshape(-1)
        out = jax.vmap(lambda lam: _invert_one(self, lam))(flat)
        return out.reshape(logsnr.shape)

    def density_in_logsnr(self, logsnr: ArrayLike) -> Array:
        """Density of ``lam(t)`` for ``t ~ U(0, 1)``: ``1 / |lam'(t(lam))|``.

        This is the training noise distribution the schedule induces.
        """
        return 1.0 / jnp.abs(self.dlogsnr_dt(self.t_of_logsnr(logsnr)))


def _invert_one(schedule: AbstractSchedule, target: Array) -> Array:
    import optimistix as optx  # on first use: importing it takes a noticeable share of a run

    def residual(t, args):
        sched, lam = args
        return sched.logsnr(t) - lam

    dtype = target.dtype
    tol = 1e-6 if dtype == jnp.float32 else 1e-12
    solver = optx.Bisection(rtol=tol, atol=tol, flip=True)
    sol = optx.root_find(
        residual,
        solver,
        jnp.asarray(0.5, dtype),
        args=(schedule, target),
        options=dict(lower=jnp.asarray(0.0, dtype), upper=jnp.asarray(1.0, dtype)),
        max_steps=200,
        throw=False,
    )
    return sol.value


class AbstractEndpointSchedule(AbstractSchedule):
    """Base for families parametrised by their noise-level range ``[sigma_min, sigma_max]``.

    ``sigma_min`` and ``sigma_max`` are static floats (fixed endpoints, never trained);
    subclasses implement :meth:`logsnr`, exact at both ends. Families written as a curve
    rescaled onto the range subclass :class:`AbstractRescaledSchedule` instead.
    """

    sigma_min: float = eqx.field(static=True, default=0.002, kw_only=True)
    sigma_max: float = eqx.field(static=True, default=80.0, kw_only=True)

    def __check_init__(self):
        check_sigma_range(self.sigma_min, self.sigma_max)

    @property
    def logsnr_max(self) -> float:
        return float(-2.0 * np.log(self.sigma_min))

    @property
    def logsnr_min(self) -> float:
        return float(-2.0 * np.log(self.sigma_max))


class AbstractRescaledSchedule(AbstractEndpointSchedule):
    """Base for families given by a curve ``g(t)`` rescaled onto the noise-level range.

    Subclasses provide ``_shape(t)``, any strictly decreasing curve on ``[0, 1]``, which
    is affinely rescaled so that the endpoints are exact:
    ``lam(t) = (1 - f(t)) lam_max + f(t) lam_min``, ``f = (g(t) - g(0)) / (g(1) - g(0))``.

    >>> class Linear(AbstractRescaledSchedule):
    ...     def _shape(self, t):
    ...         return -t
    >>> s = Linear(sigma_min=0.01, sigma_max=10.0)
    >>> round(float(s.noise_level(0.0)), 4), round(float(s.noise_level(1.0)), 4)
    (0.01, 10.0)
    """

    @abc.abstractmethod
    def _shape(self, t: Array) -> Array:
        """A strictly decreasing curve on ``[0, 1]``, ideally already ``lam(t)``."""

    def logsnr(self, t):
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        g0 = self._shape(jnp.zeros((), t.dtype))
        g1 = self._shape(jnp.ones((), t.dtype))
        f = (self._shape(t) - g0) / (g1 - g0)
        return lerp_logsnr(pin_ends(t, f), self.logsnr_max, self.logsnr_min)


def pin_ends(t: Array, value: Array, at_zero=0.0, at_one=1.0, *, slope_of=None) -> Array:
    """``value`` with ``v(0) = at_zero`` and ``v(1) = at_one`` enforced exactly, keeping
    the derivative of ``slope_of`` (default ``value``) there, forward and reverse mode.

    Vector and scalar evaluations of the same curve may round differently in XLA, so the
    normalised fraction can miss 0 or 1 by an ulp; the ends are pinned here. A plain
    ``where`` would also zero ``lam'(t)`` at the ends (a constant has no derivative), which
    the samplers that step with ``lam'`` (Euler–Maruyama at ``t = 1``) must not see; the
    pinned ends carry ``value - stop_gradient(value)``, exactly 0 with ``value``'s derivative.

    >>> f = lambda t: pin_ends(t, 2.0 * t + 1e-7)
    >>> float(f(0.0)), float(jax.jvp(f, (0.0,), (1.0,))[1])
    (0.0, 2.0)
    """
    curve = value if slope_of is None else slope_of
    slope = curve - jax.lax.stop_gradient(curve)  # 0, with the curve's derivative
    return jnp.where(t <= 0.0, at_zero + slope, jnp.where(t >= 1.0, at_one + slope, value))


def lerp_logsnr(fraction: Array, logsnr_max, logsnr_min) -> Array:
    """``(1 - f) lam_max + f lam_min``: exact at ``f = 0`` and ``f = 1`` in floating point."""
    return (1.0 - fraction) * logsnr_max + fraction * logsnr_min


# ---- sampling grids -------------------------------------------------------------------


def grid_times(num_steps: int, final: str = "zero") -> Float[Array, " n"]:
    """Times of the schedule points of an ``num_steps``-step sampling grid, noisy first.

    ``final="zero"`` (EDM / k-diffusion): ``num_steps`` points ``t_k = 1 - k / (N - 1)``,
    followed by a last step to noise level 0 (not a schedule point). ``final="min"``:
    ``N + 1`` points ``t_k = 1 - k / N`` ending at ``sigma_min``.

    >>> grid_times(3)
    Array([1. , 0.5, 0. ], dtype=float32)
    """
    n = check_positive_int("num_steps", num_steps)
    check_choice("final", final, FINALS)
    if final == "min":
        return 1.0 - jnp.arange(n + 1) / n
    if n == 1:
        return jnp.ones((1,))
    return 1.0 - jnp.arange(n) / (n - 1)


def grid(schedule: AbstractSchedule, num_steps: int, final: str = "zero") -> Float[Array, " n"]:
    """The noise levels ``s_0 > s_1 > ... > s_N`` of an ``num_steps``-step sampling grid.

    With ``final="zero"`` (default, as EDM and k-diffusion) the last entry is 0 and the
    grid has ``num_steps + 1`` entries; ``final="min"`` ends at ``schedule.sigma_min``.

    >>> from schedopt.schedules import EDM
    >>> [round(float(x), 3) for x in grid(EDM(), 2)]
    [80.0, 0.002, 0.0]
    """
    ts = grid_times(num_steps, final)
    levels = schedule.noise_level(ts)
    if final == "zero":
        levels = jnp.concatenate([levels, jnp.zeros((1,), levels.dtype)])
    return levels
