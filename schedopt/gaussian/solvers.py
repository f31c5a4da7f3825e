"""Samplers applied to Gaussian data with the exact denoiser, one direction at a time.

With ``D(y; s) = mu + c / (c + s^2) (y - mu)`` every sampler step is affine in the offset
``e = y - mu``: ``e' = a e + b mu + sqrt(q) xi``. Each solver returns, per step and per
eigenvalue, the gain ``a``, the mean drift ``b``, the variance ratio
``r = a^2 (c + s^2) / (c + s'^2)`` (relative to the exact marginals) and its log,
``q / (c + s'^2)``, and the excess ``1 - r - q / (c + s'^2)`` in a form without
cancellation. :mod:`schedopt.gaussian.chain` chains them with multiply-adds.

Step maps (``h = s' - s``, ``A(s) = s / (c + s^2)``, the ODE ``de/ds = A(s) e``; all
rational in the levels):

- ``Euler`` (= DDIM): ``a = 1 + h A(s) = (c + s s') / (c + s^2)``,
  ``1 - r = c (s - s')^2 / ((c + s^2)(c + s'^2))``.
- ``Heun`` (EDM): ``a = 1 + h/2 (A(s) + A(s') (1 + h A(s)))
  = (2 c^2 + c s^2 + 3 c s'^2 + 2 s s'^3) / (2 (c + s^2)(c + s'^2))``,
  ``1 - r = -c (s - s')^3 (c s + 3 c s' + 4 s'^3) / (4 (c + s^2)(c + s'^2)^3)``;
  Euler when ``s' = 0``.
- ``GaussianAncestral(eta)`` (DDPM, k-diffusion): ``a = (c + s s_down) / (c + s^2)``,
  ``q = s_up^2``, ``1 - r - q / (c + s'^2) = c (s - s_down)^2 / ((c + s^2)(c + s'^2))``.
- ``GaussianEulerMaruyama`` in the schedule's time ``t`` (Choi & Fan, arXiv 2506.08337),
  VE or VP, noise variance ``kappa``; its last step to ``s' = 0`` returns the denoiser.
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
from ..schedules.decoupled import is_decoupled
from .chain import Start, deterministic_log_ratio, mean_offset, stochastic_chain


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


def step_grid(
    schedule: AbstractSchedule, num_steps: int, final: str = "zero", *, derivative: bool = True
) -> StepGrid:
    """The ``num_steps``-step grid of ``schedule`` with times and derivatives
    (``derivative=False``: without ``dlogsnr_dt``, which only solvers that step in the
    schedule's time need, see ``AbstractGaussianSolver.steps_in_time``; it saves tracing a
    forward-mode pass).

    >>> from schedopt.schedules import EDM
    >>> step_grid(EDM(), 4).sigmas.shape
    (5,)
    >>> step_grid(EDM(), 4, derivative=False).dlogsnr_dt is None
    True
    """
    if is_decoupled(schedule):
        raise ValueError(
            "the Gaussian closed forms see only the grid, not the denoiser's time inputs of a "
            "DecoupledTimes schedule; pass its inner `schedule`, or measure it with samples"
        )
    t = grid_times(num_steps, final)
    if derivative:
        lam, dlam = schedule.logsnr_and_derivative(t)
    else:
        lam, dlam = schedule.logsnr(t), None
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
    """Per step (axis 0) and eigenvalue (axis 1): ``e' = a e + b mu + noise``, the variance
    ratio ``r`` and its log, the noise ``q_rel = q / (c + s'^2)`` and the excess
    ``1 - r - q_rel`` (computed without cancellation; ``None`` only for hand-built
    coefficients, then it is formed from ``r`` and ``q_rel``)."""

    a: Array
    b: Array
    log_r: Array
    q_rel: Array
    ratio: Array | None = None
    excess: Array | None = None


class AbstractGaussianSolver(eqx.Module):
    """A sampler's step map on Gaussian data with the exact denoiser.

    A single-step solver implements :meth:`step_map`: one step's coefficients from the
    eigenvalues and the per-step scalars of :meth:`step_inputs`, elementwise (``c`` and the
    scalars broadcast). :meth:`coefficients` applies it to every step at once; :meth:`chain`
    applies it step by step inside one ``lax.scan``.
    """

    name: ClassVar[str]
    stochastic: ClassVar[bool] = False
    multistep: ClassVar[bool] = False
    #: whether ``b`` (the mean drift) can be nonzero; else it is known to be 0
    drifts_mean: ClassVar[bool] = False
    #: whether the steps need the grid's schedule times and ``dlogsnr_dt``
    steps_in_time: ClassVar[bool] = False

    def step_inputs(self, grid: StepGrid) -> tuple[Array, ...]:
        """The per-step scalars :meth:`step_map` takes, each ``(num_steps,)``: ``(s, s')``."""
        return grid.sigmas[:-1], grid.sigmas[1:]

    @abc.abstractmethod
    def step_map(self, c: Array, s: Array, s_next: Array, *extra: Array) -> StepCoefficients:
        """One step's :class:`StepCoefficients` (``c`` broadcast against the scalars)."""

    def coefficients(self, c: Float[Array, " d"], grid: StepGrid) -> StepCoefficients:
        """Affine step coefficients of every step, shape ``(num_steps, d)``."""
        inputs = self.step_inputs(grid)
        co = self.step_map(c[None, :], *(x[:, None] for x in inputs))
        shape = (inputs[0].shape[0], c.shape[0])
        return StepCoefficients(*(None if f is None else jnp.broadcast_to(f, shape) for f in co))

    def chain(
        self, c: Float[Array, " d"], mean: Float[Array, " d"], grid: StepGrid, start: Start
    ) -> tuple[Array, Array]:
        """``(log w_N, delta_N)`` from the initial :class:`~schedopt.gaussian.chain.Start`:
        ``w' = r w + q_rel`` and ``delta' = a delta + b mu`` with multiply-adds, one log per
        eigenvalue at the end (:mod:`schedopt.gaussian.chain`).

        >>> from schedopt.gaussian.chain import Start
        >>> c = jnp.array([1.0])
        >>> log_w, _ = Euler().chain(c, 0 * c, sigma_grid([2.0, 0.0]), Start(c, 0 * c))
        >>> round(float(jnp.exp(log_w[0])), 6)  # c / (c + s^2)
        0.2
        """
        inputs = self.step_inputs(grid)
        if self.stochastic:
            return stochastic_chain(self, c, mean, inputs, start)
        log_w = deterministic_log_ratio(self, c, start.w, start.u, inputs)
        return log_w, mean_offset(self, c, mean, inputs, start.delta)

    def propagate(
        self, c: Array, mean: Array, grid: StepGrid, log_w0: Array, delta0: Array
    ) -> tuple[Array, Array]:
        """``(log w_N, delta_N)``: the output's log variance over the exact marginal's and
        its mean offset, from the initial ``(log w_0, delta_0)``; the affine steps
        ``delta' = a delta + b mu``, ``w' = r w + q / (c + s'^2)`` chained by :meth:`chain`.

        >>> c = jnp.array([1.0])
        >>> log_w, delta = Euler().propagate(c, 0 * c, sigma_grid([2.0, 0.0]), 0 * c, c)
        >>> round(float(delta[0]), 6)  # the gain c / (c + s^2)
        0.2
        """
        return self.chain(c, mean, grid, Start.from_log(log_w0, delta0))

    def nfe(self, num_steps: int) -> int:
        """Denoiser evaluations for ``num_steps`` steps ending at noise level 0."""
        return check_positive_int("num_steps", num_steps)


def _log_r_from_gain(a, span, span_next):
    """``log r = log(a^2 (c + s^2) / (c + s'^2))`` from the two spans."""
    return 2.0 * jnp.log(jnp.abs(a)) + jnp.log(span) - jnp.log(span_next)


def _deterministic(a, ratio, excess, log_r=None):
    zeros = jnp.zeros_like(a)
    log_r = jnp.log(ratio) if log_r is None else log_r
    return StepCoefficients(a=a, b=zeros, log_r=log_r, q_rel=zeros, ratio=ratio, excess=excess)


class Euler(AbstractGaussianSolver):
    """Euler on the probability-flow ODE (identical to DDIM).

    >>> co = Euler().coefficients(jnp.array([1.0]), sigma_grid([2.0, 0.0]))
    >>> round(float(co.a[0, 0]), 6)  # c / (c + s^2)
    0.2
    """

    name: ClassVar[str] = "euler"

    def step_map(self, c, s, s_next):
        span = c + s**2
        cross = c + s * s_next
        inverse = 1.0 / (span * (c + s_next**2))
        excess = c * (s - s_next) ** 2 * inverse
        return _deterministic(cross / span, cross**2 * inverse, excess, jnp.log1p(-excess))


class Heun(AbstractGaussianSolver):
    """EDM's second-order Heun; the last step to ``s' = 0`` is Euler (``2N - 1`` NFE).

    >>> co = Heun().coefficients(jnp.array([1.0]), sigma_grid([1.0, 0.5]))
    >>> round(float(co.a[0, 0]), 4)  # the exact flow's gain is sqrt(1.25 / 2) = 0.7906
    0.8
    """

    name: ClassVar[str] = "heun"

    def step_inputs(self, grid):
        """Per step, what does not depend on the eigenvalue (computed once per step, not per
        step and eigenvalue): ``(s^2, s'^2, s^2 + 3 s'^2, 2 s s'^3, (s - s')^3, s + 3 s',
        4 s'^3, last)``. The step to 0 (``last``) is Euler's; the Heun branch sees a
        harmless dummy step there (``s' = s``), so that neither branch of the select in
        :meth:`step_map` has an inf or NaN derivative."""
        s, s_next = grid.sigmas[:-1], grid.sigmas[1:]
        last = s_next == 0
        s_next = jnp.where(last, s, s_next)
        s2, sn2, sn3 = s**2, s_next**2, s_next**3
        return (
            s2,
            sn2,
            s2 + 3.0 * sn2,
            2.0 * s * sn3,
            (s - s_next) ** 3,
            s + 3.0 * s_next,
            4.0 * sn3,
            last.astype(s.dtype),
        )

    def step_map(self, c, s2, sn2, quad, cubic, gap3, lin, sn3x4, last):
        # a = (c (2c + s^2 + 3 s'^2) + 2 s s'^3) / (2 (c + s^2)(c + s'^2)); the step to 0
        # is Euler's: a = r = c / (c + s^2), excess s^2 / (c + s^2)
        last = last > 0
        span, span_next = c + s2, c + sn2
        inverse = 1.0 / (span * span_next)  # divisions in turn: (A B^3)^2 underflows
        a = 0.5 * (c * (2.0 * c + quad) + cubic) * inverse
        excess = -c * gap3 * (c * lin + sn3x4)
        to_zero = c / span
        return _deterministic(
            jnp.where(last, to_zero, a),
            jnp.where(last, to_zero, a * a * span / span_next),
            jnp.where(last, s2 / span, 0.25 * excess * inverse / span_next / span_next),
        )

    def nfe(self, num_steps):
        return 2 * check_positive_int("num_steps", num_steps) - 1


class GaussianAncestral(AbstractGaussianSolver):
    """DDPM ancestral sampling = k-diffusion's Euler ancestral with ``eta`` (1: DDPM).

    ``s_up = min(s', eta s' sqrt(s^2 - s'^2) / s)``, ``s_down = sqrt(s'^2 - s_up^2)``.

    >>> float(GaussianAncestral().coefficients(jnp.array([1.0]), sigma_grid([1.0, 0.0])).a[0, 0])
    0.5
    """

    name: ClassVar[str] = "ancestral"
    stochastic: ClassVar[bool] = True
    eta: float = 1.0

    def __check_init__(self):
        if is_concrete(self.eta) and not 0.0 <= float(self.eta) <= 1.0:
            raise ValueError(f"`eta` must be in [0, 1], got eta={self.eta!r}")

    def step_inputs(self, grid):
        """Per step, what does not depend on the eigenvalue (computed once per step, not per
        step and eigenvalue): ``(s^2, s'^2, s s_down, (s - s_down)^2, s_up^2)``."""
        s, s_next = grid.sigmas[:-1], grid.sigmas[1:]
        s_up, s_down = ancestral_split(s, s_next, self.eta)
        return s**2, s_next**2, s * s_down, (s - s_down) ** 2, s_up**2

    def step_map(self, c, s2, sn2, s_down_cross, down_gap2, s_up2):
        span, span_next = c + s2, c + sn2
        cross = c + s_down_cross
        inverse = 1.0 / (span * span_next)
        a = cross / span
        return StepCoefficients(
            a=a,
            b=jnp.zeros_like(a),
            log_r=_log_r_from_gain(a, span, span_next),
            q_rel=s_up2 / span_next,
            ratio=cross**2 * inverse,
            excess=c * down_gap2 * inverse,
        )


def ancestral_split(s, s_next, eta):
    """``(s_up, s_down)`` of one ancestral step from ``s`` to ``s_next`` (k-diffusion's
    ``get_ancestral_step``), used by the ancestral sampler and its exact Gaussian form.

    ``s_up = min(s', eta s' sqrt(1 - r^2))`` and ``s_down = sqrt(s'^2 - s_up^2)
    = s' sqrt(max(1 - eta^2 (1 - r^2), 0))`` with ``r = s'/s`` (k-diffusion's
    ``sqrt(s'^2 (s^2 - s'^2) / s^2)``, written so that both derivatives stay finite at
    ``s' = 0``, a last step to the data, and at ``s' = s``).

    >>> [round(float(v), 4) for v in ancestral_split(2.0, 1.0, 1.0)]
    [0.866, 0.5]
    """
    r = s_next / s
    s_up = jnp.minimum(s_next, eta * s_next * _sqrt0(1.0 - r**2))
    s_down = s_next * _sqrt0(1.0 - eta**2 * (1.0 - r**2))
    return s_up, s_down


def _sqrt0(x):
    """``sqrt(max(x, 0))`` whose derivative is 0, not inf or NaN, at and below ``x = 0``."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


class GaussianEulerMaruyama(AbstractGaussianSolver):
    """Euler–Maruyama on the reverse SDE, stepping in the schedule's time ``t`` (Choi & Fan).

    VE (``y``): ``y' = y + g2 h score + sqrt(kappa g2 h) xi``, ``g2 = d s^2 / dt``.
    VP (``x = alpha y``): ``x' = x + beta h (x / 2 + score_x) + sqrt(kappa beta h) xi``,
    ``beta = -sigma^2 dlam/dt``. A last step to ``s' = 0`` returns ``D(y, s)``.
    ``kappa`` scales the noise variance (1 = matched; Choi & Fan's mis-scaling study).
    """

    name: ClassVar[str] = "euler-maruyama"
    stochastic: ClassVar[bool] = True
    drifts_mean: ClassVar[bool] = True
    steps_in_time: ClassVar[bool] = True
    process: str = "vp"
    kappa: float = 1.0

    def __check_init__(self):
        check_choice("process", self.process, ("vp", "ve"))
        if is_concrete(self.kappa):
            check_positive_float("kappa", self.kappa)

    def step_inputs(self, grid):
        """Per step, everything that does not depend on the eigenvalue, so that the chain
        computes it once per step, not once per step and eigenvalue:
        ``(s^2, s'^2, p, m, q, k_1, k_2, last)`` with the gain ``a = p - m / (c + s^2)``,
        the mean drift ``b = p - 1``, the injected variance ``q`` and, for VE, the excess
        ``(k_1 - k_2 / (c + s^2)) / (c + s'^2)``; ``last`` marks a last denoise step to
        ``s' = 0`` (``a = c / (c + s^2)``: ``p = 1``, ``m = s^2``, ``q = 0``). The time step
        ``h`` between schedule points is 0 there.

        VE: ``g2h = -s^2 dlam h``, ``p = 1``, ``m = g2h``, ``q = kappa g2h``,
        ``k_1 = s'^2 - s^2 + (2 - kappa) g2h``, ``k_2 = g2h^2``. VP: ``beta h =
        -sigma^2 dlam h``, ``p = (1 + beta h / 2) alpha / alpha'``, ``m = beta h / (alpha
        alpha')``, ``q = kappa beta h / alpha'^2``.
        """
        if grid.t is None or grid.dlogsnr_dt is None:
            raise ValueError(
                "GaussianEulerMaruyama steps in the schedule's time and needs its derivative: "
                "build the grid with `step_grid(schedule, num_steps)`, not from a sigma list"
            )
        t, n = grid.t, grid.num_steps
        # Steps between schedule points; with final="zero" the last step is a denoise.
        h = jnp.concatenate([t[:-1] - t[1:], jnp.zeros((n - (t.shape[0] - 1),), t.dtype)])
        s, s_next, dlam = grid.sigmas[:-1], grid.sigmas[1:], grid.dlogsnr_dt[:n]
        last = s_next == 0
        s2, sn2 = s**2, s_next**2
        zeros = jnp.zeros_like(s)
        if self.process == "ve":
            g2h = -s2 * dlam * h
            p, m, q = jnp.ones_like(s), g2h, self.kappa * g2h
            k1, k2 = sn2 - s2 + (2.0 - self.kappa) * g2h, g2h**2
        else:
            lam = -2.0 * jnp.log(s)
            lam_next = -2.0 * jnp.log(jnp.where(last, 1.0, s_next))
            alpha, sigma2 = jnp.sqrt(jax.nn.sigmoid(lam)), jax.nn.sigmoid(-lam)
            alpha_next = jnp.sqrt(jax.nn.sigmoid(lam_next))
            beta_h = -sigma2 * dlam * h
            p = (1.0 + 0.5 * beta_h) * alpha / alpha_next
            m, q = beta_h / (alpha * alpha_next), self.kappa * beta_h / alpha_next**2
            k1 = k2 = zeros
        p, m, q = jnp.where(last, 1.0, p), jnp.where(last, s2, m), jnp.where(last, 0.0, q)
        return s2, sn2, p, m, q, k1, k2, last.astype(s.dtype)

    def step_map(self, c, s2, sn2, p, m, q, k1, k2, last):
        span, span_next = c + s2, c + sn2
        inverse = 1.0 / span
        a = p - m * inverse
        q_rel = q / span_next
        ratio = a * a * span / span_next
        if self.process == "ve":
            # 1 - r - q_rel = (s'^2 - s^2 + (2 - kappa) g2h - g2h^2 / (c + s^2)) / (c + s'^2)
            excess = (k1 - k2 * inverse) / span_next
        else:
            excess = (1.0 - ratio) - q_rel
        return StepCoefficients(
            a=a,
            b=p - 1.0,
            log_r=_log_r_from_gain(a, span, span_next),
            q_rel=q_rel,
            ratio=ratio,
            excess=jnp.where(last > 0, s2 * inverse, excess),  # r = c / (c + s^2), no noise
        )
