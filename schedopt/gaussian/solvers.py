"""Samplers applied to Gaussian data with the exact denoiser, one direction at a time.

With ``D(y; s) = mu + c / (c + s^2) (y - mu)`` every sampler step is affine in the offset
``e = y - mu``: ``e' = a e + b mu + sqrt(q) xi``. Each solver returns, per step and per
eigenvalue, the gain ``a``, the mean drift ``b``, the log of the variance ratio
``r = a^2 (c + s^2) / (c + s'^2)`` (relative to the exact marginals, computed without
cancellation) and ``q / (c + s'^2)``. :mod:`schedopt.gaussian.moments` chains them.

Step maps (``h = s' - s``, ``A(s) = s / (c + s^2)``, the ODE ``de/ds = A(s) e``):

- ``Euler`` (= DDIM): ``a = 1 + h A(s) = (c + s s') / (c + s^2)``,
  ``1 - r = c (s - s')^2 / ((c + s^2)(c + s'^2))``.
- ``Heun`` (EDM): ``a = 1 + h/2 (A(s) + A(s') (1 + h A(s)))``; Euler when ``s' = 0``.
- ``Ancestral(eta)`` (DDPM, k-diffusion): ``a = (c + s s_down) / (c + s^2)``, ``q = s_up^2``.
- ``EulerMaruyama`` in the schedule's time ``t`` (P2), VE or VP, noise variance ``kappa``;
  its last step to ``s' = 0`` returns the denoiser.
"""

from __future__ import annotations

import abc
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import check_choice, check_positive_float, check_positive_int, is_concrete
from ..schedules.base import AbstractSchedule, grid_times


class StepGrid(NamedTuple):
    """A sampling grid: noise levels ``sigmas`` (``s_0 > ... > s_N >= 0``) and, when built
    from a schedule, the times ``t`` and ``dlogsnr_dt`` of its schedule points (needed by
    Euler–Maruyama, whose drift uses the schedule's time derivative); ``final_zero`` says
    whether ``s_N = 0`` (multistep solvers take that step as first order; ``None`` when
    unknown, e.g. a traced list)."""

    sigmas: Float[Array, " n+1"]
    t: Float[Array, " m"] | None = None
    dlogsnr_dt: Float[Array, " m"] | None = None
    final_zero: bool | None = None

    @property
    def num_steps(self) -> int:
        return int(self.sigmas.shape[0]) - 1


def step_grid(schedule: AbstractSchedule, num_steps: int, final: str = "zero") -> StepGrid:
    """The ``num_steps``-step grid of ``schedule`` with times and derivatives.

    >>> from schedopt.schedules import EDM
    >>> step_grid(EDM(), 4).sigmas.shape
    (5,)
    """
    t = grid_times(num_steps, final)
    lam, dlam = schedule.logsnr_and_derivative(t)
    sigmas = jnp.exp(-0.5 * lam)
    if final == "zero":
        sigmas = jnp.concatenate([sigmas, jnp.zeros((1,), sigmas.dtype)])
    return StepGrid(sigmas=sigmas, t=t, dlogsnr_dt=dlam, final_zero=final == "zero")


def sigma_grid(sigmas) -> StepGrid:
    """A grid from a plain noise-level list; checks it is finite and strictly decreasing.

    >>> sigma_grid([80.0, 1.0, 0.0]).num_steps
    2
    """
    sigmas = jnp.asarray(sigmas, dtype=jnp.result_type(float))
    if is_concrete(sigmas):
        import numpy as np

        s = np.asarray(sigmas)
        if s.ndim != 1 or s.shape[0] < 2:
            raise ValueError(f"`sigmas` must be a 1-D list of >= 2 noise levels, got {s.tolist()}")
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ValueError(f"`sigmas` must be finite and >= 0, got {s.tolist()}")
        if np.any(np.diff(s) >= 0):
            raise ValueError(f"`sigmas` must be strictly decreasing, got {s.tolist()}")
        if np.any(s[:-1] == 0):
            raise ValueError(f"only the last of `sigmas` may be 0, got {s.tolist()}")
        return StepGrid(sigmas=sigmas, final_zero=bool(s[-1] == 0))
    return StepGrid(sigmas=sigmas)


class StepCoefficients(NamedTuple):
    """Per step (axis 0) and eigenvalue (axis 1): ``e' = a e + b mu + noise``."""

    a: Array
    b: Array
    log_r: Array
    q_rel: Array


class AbstractGaussianSolver(eqx.Module):
    """A sampler's step map on Gaussian data with the exact denoiser."""

    name: ClassVar[str]
    stochastic: ClassVar[bool] = False
    multistep: ClassVar[bool] = False

    @abc.abstractmethod
    def coefficients(self, c: Float[Array, " d"], grid: StepGrid) -> StepCoefficients:
        """Affine step coefficients, shape ``(num_steps, d)``."""

    def propagate(
        self, c: Array, mean: Array, grid: StepGrid, log_w0: Array, delta0: Array
    ) -> tuple[Array, Array]:
        """``(log w_N, delta_N)``: the output's log variance over the exact marginal's and
        its mean offset, from the initial ``(log w_0, delta_0)``; chains the affine steps
        ``delta' = a delta + b mu``, ``w' = r w + q / (c + s'^2)`` in log form."""
        co = self.coefficients(c, grid)

        def step(carry, k):
            log_w, delta = carry
            # steps without noise (q_rel = 0, e.g. EM's last denoise step) skip the log:
            # its infinite derivative at 0 would make the gradient NaN
            noisy = co.q_rel[k] > 0
            log_q = jnp.log(jnp.where(noisy, co.q_rel[k], 1.0))
            carried = co.log_r[k] + log_w
            log_w = jnp.where(noisy, jnp.logaddexp(carried, log_q), carried)
            delta = co.a[k] * delta + co.b[k] * mean
            return (log_w, delta), None

        (log_w, delta), _ = jax.lax.scan(step, (log_w0, delta0), jnp.arange(co.a.shape[0]))
        return log_w, delta

    def nfe(self, num_steps: int) -> int:
        """Denoiser evaluations for ``num_steps`` steps ending at noise level 0."""
        return check_positive_int("num_steps", num_steps)


def _pairs(c, grid):
    s = grid.sigmas[:-1, None]
    s_next = grid.sigmas[1:, None]
    return c[None, :], s, s_next


def _log_r_from_gain(a, c, s, s_next):
    return 2.0 * jnp.log(jnp.abs(a)) + jnp.log(c + s**2) - jnp.log(c + s_next**2)


def _deterministic(a, c, s, s_next, log_r=None):
    log_r = _log_r_from_gain(a, c, s, s_next) if log_r is None else log_r
    zeros = jnp.zeros_like(a)
    return StepCoefficients(a=a, b=zeros, log_r=log_r, q_rel=zeros)


class Euler(AbstractGaussianSolver):
    """Euler on the probability-flow ODE (identical to DDIM).

    >>> co = Euler().coefficients(jnp.array([1.0]), sigma_grid([2.0, 0.0]))
    >>> round(float(co.a[0, 0]), 6)  # c / (c + s^2)
    0.2
    """

    name: ClassVar[str] = "euler"

    def coefficients(self, c, grid):
        c, s, s_next = _pairs(c, grid)
        a = (c + s * s_next) / (c + s**2)
        defect = c * (s - s_next) ** 2 / ((c + s**2) * (c + s_next**2))
        return _deterministic(a, c, s, s_next, jnp.log1p(-defect))


class Heun(AbstractGaussianSolver):
    """EDM's second-order Heun; the last step to ``s' = 0`` is Euler (``2N - 1`` NFE).

    >>> co = Heun().coefficients(jnp.array([1.0]), sigma_grid([1.0, 0.5]))
    >>> round(float(co.a[0, 0]), 4)  # the exact flow's gain is sqrt(1.25 / 2) = 0.7906
    0.8
    """

    name: ClassVar[str] = "heun"

    def coefficients(self, c, grid):
        c, s, s_next = _pairs(c, grid)
        h = s_next - s
        slope = s / (c + s**2)
        slope_next = s_next / (c + s_next**2)
        euler = 1.0 + h * slope
        heun = 1.0 + 0.5 * h * (slope + slope_next * euler)
        a = jnp.where(s_next > 0, heun, euler)
        return _deterministic(a, c, s, s_next)

    def nfe(self, num_steps):
        return 2 * check_positive_int("num_steps", num_steps) - 1


class Ancestral(AbstractGaussianSolver):
    """DDPM ancestral sampling = k-diffusion's Euler ancestral with ``eta`` (1: DDPM).

    ``s_up = min(s', eta s' sqrt(s^2 - s'^2) / s)``, ``s_down = sqrt(s'^2 - s_up^2)``.

    >>> float(Ancestral().coefficients(jnp.array([1.0]), sigma_grid([1.0, 0.0])).a[0, 0])
    0.5
    """

    name: ClassVar[str] = "ancestral"
    stochastic: ClassVar[bool] = True
    eta: float = 1.0

    def __check_init__(self):
        if is_concrete(self.eta) and not 0.0 <= float(self.eta) <= 1.0:
            raise ValueError(f"`eta` must be in [0, 1], got eta={self.eta!r}")

    def coefficients(self, c, grid):
        c, s, s_next = _pairs(c, grid)
        s_up, s_down = ancestral_split(s, s_next, self.eta)
        a = (c + s * s_down) / (c + s**2)
        return StepCoefficients(
            a=a,
            b=jnp.zeros_like(a),
            log_r=_log_r_from_gain(a, c, s, s_next),
            q_rel=jnp.broadcast_to(s_up**2 / (c + s_next**2), a.shape),
        )


def ancestral_split(s, s_next, eta):
    """``(s_up, s_down)`` of an ancestral step from ``s`` to ``s_next`` (k-diffusion's rule)."""
    s_up = jnp.minimum(s_next, eta * s_next * jnp.sqrt(jnp.maximum(s**2 - s_next**2, 0.0)) / s)
    s_down = jnp.sqrt(jnp.maximum(s_next**2 - s_up**2, 0.0))
    return s_up, s_down


class EulerMaruyama(AbstractGaussianSolver):
    """Euler–Maruyama on the reverse SDE, stepping in the schedule's time ``t`` (P2).

    VE (``y``): ``y' = y + g2 h score + sqrt(kappa g2 h) xi``, ``g2 = d s^2 / dt``.
    VP (``x = alpha y``): ``x' = x + beta h (x / 2 + score_x) + sqrt(kappa beta h) xi``,
    ``beta = -sigma^2 dlam/dt``. A last step to ``s' = 0`` returns ``D(y, s)``.
    ``kappa`` scales the noise variance (1 = matched; P2's mis-scaling study).
    """

    name: ClassVar[str] = "euler-maruyama"
    stochastic: ClassVar[bool] = True
    process: str = "vp"
    kappa: float = 1.0

    def __check_init__(self):
        check_choice("process", self.process, ("vp", "ve"))
        if is_concrete(self.kappa):
            check_positive_float("kappa", self.kappa)

    def coefficients(self, c, grid):
        if grid.t is None or grid.dlogsnr_dt is None:
            raise ValueError(
                "EulerMaruyama steps in the schedule's time and needs its derivative: "
                "build the grid with `step_grid(schedule, num_steps)`, not from a sigma list"
            )
        c, s, s_next = _pairs(c, grid)
        m = grid.t.shape[0]
        n = grid.num_steps
        # Steps between schedule points; with final="zero" the last step is a denoise.
        t = grid.t
        h = jnp.concatenate([t[:-1] - t[1:], jnp.zeros((n - (m - 1),), t.dtype)])[:, None]
        dlam = grid.dlogsnr_dt[:n, None]  # m >= n schedule points for both finals
        lam = -2.0 * jnp.log(s)
        denoise = s_next == 0
        if self.process == "ve":
            g2h = -(s**2) * dlam * h
            a = 1.0 - g2h / (c + s**2)
            b = jnp.zeros_like(a)
            q = self.kappa * g2h
        else:
            lam_next = -2.0 * jnp.log(jnp.where(denoise, 1.0, s_next))
            alpha, sigma2 = jnp.sqrt(jax.nn.sigmoid(lam)), jax.nn.sigmoid(-lam)
            alpha_next = jnp.sqrt(jax.nn.sigmoid(lam_next))
            beta_h = -sigma2 * dlam * h
            gain_x = 1.0 + 0.5 * beta_h - beta_h / (alpha**2 * (c + s**2))
            a = gain_x * alpha / alpha_next
            b = ((1.0 + 0.5 * beta_h) * alpha - alpha_next) / alpha_next
            q = self.kappa * beta_h / alpha_next**2
        a = jnp.where(denoise, c / (c + s**2), a)
        b = jnp.where(denoise, 0.0, b)
        q = jnp.where(denoise, 0.0, q)
        q_rel = jnp.broadcast_to(q / (c + s_next**2), a.shape)
        return StepCoefficients(a=a, b=b, log_r=_log_r_from_gain(a, c, s, s_next), q_rel=q_rel)
