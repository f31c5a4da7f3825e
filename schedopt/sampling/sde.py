"""Stochastic samplers: reverse-SDE Euler–Maruyama (Choi & Fan, Euler–Maruyama with discrete
noise, arXiv 2506.08337; on diffrax), DDPM ancestral and DPM-Solver++(2M) SDE (on diffrax,
:class:`~schedopt.sampling.multistep.DPMSolverPPSDE`).

Euler–Maruyama steps in the schedule's time ``t`` between grid times ``t_k > t_{k+1}``,
``h = t_k - t_{k+1}``; diffrax integrates in ``u = 1 - t``. With ``g2 = d s^2/dt`` and
``beta = -sigma_vp^2 dlam/dt``:

- VE (state ``y``): ``y' = y + g2 h score(y, s_k) + sqrt(kappa g2 h) xi``;
- VP (state ``x = alpha y``): ``x' = x + beta h (x / 2 + score_x) + sqrt(kappa beta h) xi``.

``xi`` has i.i.d. Gaussian, Rademacher or uniform coordinates (mean 0, variance 1) and
``kappa`` scales the noise variance (1 = matched). diffrax's Brownian paths block
gradients with respect to the step locations, so the noise enters through
:class:`ReparameterisedNoisePath`, whose increment over step ``k`` is
``sqrt(kappa (u_{k+1} - u_k)) xi_k``: differentiable in the times, the schedule and
``kappa``. With ``final="zero"`` the last step returns ``D(y, s_{N-1})``.
"""

from __future__ import annotations

from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import (
    check_array_positive,
    check_choice,
    check_positive_float,
    check_positive_int,
    check_strictly_decreasing,
    is_concrete,
)
from ..gaussian.solvers import ancestral_split
from ..models.base import AbstractDenoiser
from ..schedules.base import FINALS, AbstractSchedule, grid, grid_times
from ..schedules.processes import VE, VP, AbstractProcess, process_from_name
from .base import NOISES, AbstractSampler, _check_state, _require_key, draw_noise, time_inputs
from .multistep import DPMSolverPPSDE, ProbabilityFlowTerm, solve_grid, unit_noise_term


class ReparameterisedNoisePath(diffrax.AbstractPath):
    """A noise path fixed by draws ``xi`` (one per step), differentiable in its times.

    Over the ``k``-th interval ``[ts_k, ts_{k+1}]`` the increment is
    ``sqrt(kappa (ts_{k+1} - ts_k)) xi_k``; inside an interval the path is
    ``W(ts_k) + sqrt(kappa (t - ts_k)) xi_k``. Exactly Euler–Maruyama's noise on the grid
    ``ts``, for any ``xi`` with unit variance.

    >>> path = ReparameterisedNoisePath(jnp.array([0.0, 0.25, 1.0]), jnp.array([[1.0], [2.0]]))
    >>> round(float(path.evaluate(0.25, 1.0)[0]), 5)  # sqrt(0.75) * 2
    1.73205
    """

    ts: Float[Array, " m"]
    xi: Float[Array, "m-1 ..."]
    kappa: Float[ArrayLike, ""] = 1.0

    def __check_init__(self):
        if self.ts.ndim != 1 or self.ts.shape[0] < 2:
            raise ValueError(f"`ts` must be 1-D with >= 2 times, got shape {self.ts.shape}")
        if self.xi.shape[0] != self.ts.shape[0] - 1:
            raise ValueError(
                f"`xi` needs one draw per interval: ts.shape={self.ts.shape} but "
                f"xi.shape={self.xi.shape} (expected leading size {self.ts.shape[0] - 1})"
            )

    @property
    def t0(self):
        return self.ts[0]

    @property
    def t1(self):
        return self.ts[-1]

    def _interval(self, t):
        m = self.ts.shape[0]
        return jnp.clip(jnp.searchsorted(self.ts, t, side="right") - 1, 0, m - 2)

    def _value(self, t):
        h = jnp.diff(self.ts)
        shape = (-1,) + (1,) * (self.xi.ndim - 1)
        increments = jnp.sqrt(self.kappa * h).reshape(shape) * self.xi
        before = jnp.concatenate([jnp.zeros_like(self.xi[:1]), jnp.cumsum(increments, 0)])
        k = self._interval(t)
        return before[k] + jnp.sqrt(self.kappa * jnp.maximum(t - self.ts[k], 0.0)) * self.xi[k]

    def evaluate(self, t0, t1=None, left=True):
        del left
        if t1 is None:
            return self._value(t0)
        k = self._interval(0.5 * (t0 + t1))  # the interval the step lies in
        return jnp.sqrt(self.kappa * (t1 - t0)) * self.xi[k]


def _coefficients(schedule: AbstractSchedule, u):
    """``(s, -dlam/dt)`` at time ``t = 1 - u``."""
    lam, dlam = schedule.logsnr_and_derivative(1.0 - u)
    return jnp.exp(-0.5 * lam), -dlam


def _drift(u, state, args):
    schedule, denoiser, process = args
    s, rate = _coefficients(schedule, u)
    if isinstance(process, VE):  # g2 * score = -dlam/dt * (D - y)
        return rate * (denoiser(state, s) - state)
    lam = -2.0 * jnp.log(s)
    alpha, sigma2 = jnp.sqrt(jax.nn.sigmoid(lam)), jax.nn.sigmoid(-lam)
    # beta (x/2 + score_x), beta = sigma^2 rate, score_x = (alpha D - x) / sigma^2
    return 0.5 * sigma2 * rate * state + rate * (alpha * denoiser(state / alpha, s) - state)


def _diffusion(u, state, args):
    schedule, _, process = args
    s, rate = _coefficients(schedule, u)
    if isinstance(process, VE):
        g = s * jnp.sqrt(rate)  # sqrt(d s^2 / dt)
    else:
        g = jnp.sqrt(jax.nn.sigmoid(2.0 * jnp.log(s)) * rate)  # sqrt(beta), sigma^2 = s^2/(1+s^2)
    return lx.IdentityLinearOperator(jax.eval_shape(lambda: state)) * g


def euler_maruyama(
    denoiser: AbstractDenoiser,
    schedule: AbstractSchedule,
    y0: ArrayLike,
    xi: ArrayLike,
    times: Float[ArrayLike, " m"],
    *,
    process: AbstractProcess | str = "vp",
    kappa: Float[ArrayLike, ""] = 1.0,
    to_zero: bool = True,
) -> Array:
    """Euler–Maruyama on the reverse SDE over schedule times ``times`` (``t_0 > ... > t_{m-1}``).

    ``y0`` (EDM variables) starts at ``s(t_0)``; ``xi`` has shape ``(m - 1, *y0.shape)``
    (unit variance). Returns EDM variables: ``D(y, s(t_{m-1}))`` when ``to_zero``, else
    ``y`` at ``t_{m-1}``. Differentiable in the schedule, ``times`` and ``kappa``.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.schedules import EDM
    >>> y = euler_maruyama(GaussianDenoiser(jnp.ones(2)), EDM(), jnp.ones((4, 2)),
    ...                    jnp.zeros((2, 4, 2)), jnp.array([1.0, 0.5, 0.0]), process="ve")
    >>> y.shape
    (4, 2)
    """
    y0 = _check_state(y0)
    process = process_from_name(process)
    if not isinstance(process, (VP, VE)):
        raise ValueError(f"`process` must be 'vp' or 've' for Euler-Maruyama, got {process!r}")
    if is_concrete(kappa):
        check_positive_float("kappa", kappa)
    times = jnp.asarray(times, dtype=y0.dtype)
    xi = jnp.asarray(xi, dtype=y0.dtype)
    m = times.shape[0]
    if times.ndim != 1 or m < 1:
        raise ValueError(f"`times` must be 1-D and non-empty, got shape {times.shape}")
    if m > 1:
        check_strictly_decreasing("times", times)
    if is_concrete(times) and not np.all((np.asarray(times) >= 0) & (np.asarray(times) <= 1)):
        raise ValueError(f"`times` must lie in [0, 1], got {np.asarray(times).tolist()}")
    if xi.shape != (m - 1, *y0.shape):
        raise ValueError(
            f"`xi` must have shape {(m - 1, *y0.shape)} (one draw per step), got {xi.shape}"
        )
    vp = isinstance(process, VP)
    alpha0 = process.alpha(schedule.logsnr(times[0]))
    state = alpha0 * y0 if vp else y0
    if m > 1:
        us = 1.0 - times
        terms = diffrax.MultiTerm(
            diffrax.ODETerm(_drift),
            diffrax.ControlTerm(_diffusion, ReparameterisedNoisePath(us, xi, kappa)),
        )
        sol = diffrax.diffeqsolve(
            terms,
            diffrax.Euler(),
            t0=us[0],
            t1=us[-1],
            dt0=None,
            y0=state,
            args=(schedule, denoiser, process),
            stepsize_controller=diffrax.StepTo(ts=us),
            saveat=diffrax.SaveAt(t1=True),
            max_steps=m - 1,
        )
        state = sol.ys[0]
    lam_last = schedule.logsnr(times[-1])
    y = state / process.alpha(lam_last) if vp else state
    if to_zero:
        y = denoiser(y, jnp.exp(-0.5 * lam_last))
    return y


def _check_kappa(kappa):
    if is_concrete(kappa):
        check_positive_float("kappa", kappa)
    return kappa


class EulerMaruyama(AbstractSampler):
    """Reverse-SDE Euler–Maruyama over the schedule's grid (Choi & Fan), ``N`` NFE.

    ``noise``: ``"gaussian"``, ``"rademacher"`` or ``"uniform"``; ``kappa`` scales the
    noise variance (1 = matched, may be a traced array); ``process``: ``"vp"`` or ``"ve"``.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.schedules import VPLinear
    >>> em = EulerMaruyama(50, noise="rademacher")
    >>> em(GaussianDenoiser(jnp.ones(2)), VPLinear(), jnp.ones((3, 2)), jax.random.key(0)).shape
    (3, 2)
    """

    num_steps: int = eqx.field(static=True)
    process: AbstractProcess
    noise: str = eqx.field(static=True)
    kappa: Float[ArrayLike, ""]
    final: str = eqx.field(static=True)

    name: ClassVar[str] = "euler-maruyama"
    stochastic: ClassVar[bool] = True

    def __init__(
        self,
        num_steps: int,
        process: AbstractProcess | str = "vp",
        noise: str = "gaussian",
        kappa: Float[ArrayLike, ""] = 1.0,
        final: str = "zero",
    ):
        self.num_steps = check_positive_int("num_steps", num_steps)
        self.process = process_from_name(process)
        if not isinstance(self.process, (VP, VE)):
            raise ValueError(f"`process` must be 'vp' or 've', got process={process!r}")
        self.noise = check_choice("noise", noise, NOISES)
        self.kappa = _check_kappa(kappa)
        self.final = check_choice("final", final, FINALS)

    @property
    def nfe(self) -> int:
        return self.num_steps

    def __call__(self, denoiser, schedule, y0, key=None):
        denoiser = time_inputs(denoiser, schedule)
        y0 = _check_state(y0)
        times = grid_times(self.num_steps, self.final)
        xi = draw_noise(
            _require_key(self, key), (times.shape[0] - 1, *y0.shape), self.noise, y0.dtype
        )
        return euler_maruyama(
            denoiser,
            schedule,
            y0,
            xi,
            times,
            process=self.process,
            kappa=self.kappa,
            to_zero=self.final == "zero",
        )


def ancestral(
    denoiser: AbstractDenoiser,
    noise_levels: Float[ArrayLike, " n+1"],
    y0: ArrayLike,
    xi: ArrayLike,
    *,
    eta: Float[ArrayLike, ""] = 1.0,
) -> Array:
    """Ancestral sampling through ``noise_levels`` (``s_0 > ... > s_N >= 0``) with draws ``xi``.

    Each step: ``y_d = y + (s_down - s)(y - D)/s``, ``y' = y_d + s_up xi_k``; a step to 0
    returns ``D``. ``xi`` has shape ``(N, *y0.shape)``. Differentiable in the levels.

    >>> from schedopt.models import GaussianDenoiser
    >>> y = ancestral(GaussianDenoiser(jnp.ones(1)), jnp.array([1.0, 0.0]), jnp.ones((1, 1)),
    ...               jnp.zeros((1, 1, 1)))
    >>> float(y[0, 0])  # D(1; 1) = 1 / (1 + 1)
    0.5
    """
    y0 = _check_state(y0)
    levels = jnp.asarray(noise_levels, y0.dtype)
    xi = jnp.asarray(xi, y0.dtype)
    if levels.ndim != 1 or levels.shape[0] < 2:
        raise ValueError(f"`noise_levels` must be 1-D with >= 2 levels, got shape {levels.shape}")
    check_strictly_decreasing("noise_levels", levels)
    check_array_positive("noise_levels", levels[:-1])
    if is_concrete(levels) and float(np.asarray(levels)[-1]) < 0:
        raise ValueError(f"`noise_levels` must end at a level >= 0, got {np.asarray(levels)[-1]!r}")
    if xi.shape != (levels.shape[0] - 1, *y0.shape):
        raise ValueError(
            f"`xi` must have shape {(levels.shape[0] - 1, *y0.shape)} (one draw per step), "
            f"got {xi.shape}"
        )

    def step(y, inputs):
        s, s_next, noise = inputs
        s_up, s_down = ancestral_split(s, s_next, eta)
        d = denoiser(y, s)
        return y + (s_down - s) * (y - d) / s + s_up * noise, None

    y, _ = jax.lax.scan(step, y0, (levels[:-1], levels[1:], xi))
    return y


class Ancestral(AbstractSampler):
    """DDPM ancestral sampling = k-diffusion's Euler ancestral with ``eta`` (``N`` NFE).

    Each step from ``s`` to ``s'``: ``y_d = y + (s_down - s)(y - D)/s``,
    ``y' = y_d + s_up xi``; the last step to 0 returns ``D``. A discrete Markov chain
    with per-step variances, so it runs as a ``lax.scan`` (:func:`ancestral`) rather than
    an SDE solve.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.schedules import EDM
    >>> Ancestral(10)(GaussianDenoiser(jnp.ones(2)), EDM(), jnp.ones((3, 2)),
    ...               jax.random.key(0)).shape
    (3, 2)
    """

    num_steps: int = eqx.field(static=True)
    eta: float = 1.0
    noise: str = eqx.field(static=True, default="gaussian")
    final: str = eqx.field(static=True, default="zero")

    name: ClassVar[str] = "ancestral"
    stochastic: ClassVar[bool] = True

    def __check_init__(self):
        check_positive_int("num_steps", self.num_steps)
        if is_concrete(self.eta) and not 0.0 <= float(self.eta) <= 1.0:
            raise ValueError(f"`eta` must be in [0, 1], got eta={self.eta!r}")
        check_choice("noise", self.noise, NOISES)
        check_choice("final", self.final, FINALS)

    @property
    def nfe(self) -> int:
        return self.num_steps

    def __call__(self, denoiser, schedule, y0, key=None):
        denoiser = time_inputs(denoiser, schedule)
        y0 = _check_state(y0)
        levels = grid(schedule, self.num_steps, self.final)
        xi = draw_noise(_require_key(self, key), (self.num_steps, *y0.shape), self.noise, y0.dtype)
        return ancestral(denoiser, levels, y0, xi, eta=self.eta)


def dpmpp_2m_sde(
    denoiser: AbstractDenoiser,
    noise_levels: Float[ArrayLike, " m"],
    y0: ArrayLike,
    xi: ArrayLike,
    *,
    eta: Float[ArrayLike, ""] = 1.0,
    to_zero: bool = True,
) -> Array:
    """DPM-Solver++(2M) SDE through ``noise_levels`` (``s_0 > ... > s_{m-1} > 0``), draws ``xi``.

    Step ``k``: ``y' = (s'/s) e^{-eta h} y + phi (D_k + (D_k - D_{k-1}) / (2 r)) +
    s' sqrt(1 - e^{-2 eta h}) xi_k`` with ``h = log(s / s')``, ``phi = 1 - e^{-(1+eta) h}``,
    ``r = h_{k-1} / h`` (first order at ``k = 0``), as k-diffusion's ``sample_dpmpp_2m_sde``;
    ``xi`` has shape ``(m - 1, *y0.shape)``. With ``to_zero`` the last step returns
    ``D(y; s_{m-1})``. Differentiable in the levels and ``eta``.

    >>> from schedopt.models import GaussianDenoiser
    >>> y = dpmpp_2m_sde(GaussianDenoiser(jnp.ones(1)), jnp.array([2.0, 1.0]), jnp.ones((3, 1)),
    ...                  jnp.zeros((1, 3, 1)), eta=0.0)
    >>> [round(float(v), 4) for v in y[:, 0]]  # eta = 0 and one step: DDIM, then D
    [0.3, 0.3, 0.3]
    """
    y0 = _check_state(y0)
    levels = jnp.asarray(noise_levels, dtype=y0.dtype)
    xi = jnp.asarray(xi, dtype=y0.dtype)
    if levels.ndim != 1 or levels.shape[0] < 1:
        raise ValueError(f"`noise_levels` must be 1-D and non-empty, got shape {levels.shape}")
    check_array_positive("noise_levels", levels)
    m = levels.shape[0]
    if m > 1:
        check_strictly_decreasing("noise_levels", levels)
    if xi.shape != (m - 1, *y0.shape):
        raise ValueError(
            f"`xi` must have shape {(m - 1, *y0.shape)} (one draw per step), got {xi.shape}"
        )
    y = y0
    if m > 1:
        ts = jnp.arange(m, dtype=y0.dtype)
        flow = ProbabilityFlowTerm(denoiser, levels, total_steps=m - 1 + int(to_zero))
        terms = diffrax.MultiTerm(flow, unit_noise_term(ReparameterisedNoisePath(ts, xi)))
        y = solve_grid(DPMSolverPPSDE(eta), terms, y0, m - 1)
    if to_zero:
        y = denoiser(y, levels[-1])
    return y


class DPMSolverPP2MSDE(AbstractSampler):
    """DPM-Solver++(2M) SDE over the schedule's grid (``N`` NFE), k-diffusion's
    ``sample_dpmpp_2m_sde`` with ``eta`` (1: the reverse SDE, 0: DPM-Solver++(2M)) and
    noise drawn per step (``"gaussian"``, ``"rademacher"`` or ``"uniform"``), so the step
    locations stay differentiable.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.schedules import EDM
    >>> sampler = DPMSolverPP2MSDE(5)
    >>> sampler(GaussianDenoiser(jnp.ones(2)), EDM(), jnp.ones((3, 2)), jax.random.key(0)).shape
    (3, 2)
    """

    num_steps: int = eqx.field(static=True)
    eta: float = 1.0
    noise: str = eqx.field(static=True, default="gaussian")
    final: str = eqx.field(static=True, default="zero")

    name: ClassVar[str] = "dpmpp-2m-sde"
    stochastic: ClassVar[bool] = True

    def __check_init__(self):
        check_positive_int("num_steps", self.num_steps)
        if is_concrete(self.eta) and not float(self.eta) >= 0.0:
            raise ValueError(f"`eta` must be >= 0, got eta={self.eta!r}")
        check_choice("noise", self.noise, NOISES)
        check_choice("final", self.final, FINALS)

    @property
    def nfe(self) -> int:
        return self.num_steps

    def __call__(self, denoiser, schedule, y0, key=None):
        denoiser = time_inputs(denoiser, schedule)
        y0 = _check_state(y0)
        levels = schedule.noise_level(grid_times(self.num_steps, self.final))
        shape = (levels.shape[0] - 1, *y0.shape)
        xi = draw_noise(_require_key(self, key), shape, self.noise, y0.dtype)
        return dpmpp_2m_sde(denoiser, levels, y0, xi, eta=self.eta, to_zero=self.final == "zero")
