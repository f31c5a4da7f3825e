"""Exact output moments of the multistep solvers on Gaussian data with the exact denoiser.

Per eigen-direction the denoiser of the offset ``e = y - mu`` is ``D = kappa(s) e`` with
``kappa = c / (c + s^2)``, and every solver of :mod:`schedopt._multistep` is linear in the
states and outputs it keeps, so the whole chain is still affine per eigenvalue, with a
small history state:

- deterministic solvers (DPM-Solver++(2M/3M), UniPC, iPNDM): the output offset is
  ``G e_0`` with a scalar gain ``G`` per eigenvalue, found by running the solver's own
  update on ``e_0 = 1`` (the coefficient plans of :mod:`schedopt._multistep`, shared with
  the diffrax solvers); the output is ``N(mu + G delta_0, G^2 v_0)``;
- DPM-Solver++(2M) SDE: the pair ``(e_k, D_{k-1})`` is Gaussian; its mean and 2x2
  covariance follow ``z' = M_k z + (g_k xi, 0)`` with
  ``M_k = [[r_k + w0_k kappa_k, w1_k], [kappa_k, 0]]``.

A grid ending in 0 ends with a first-order step, which returns ``D(y; s_{N-1})``. One
``lax.scan`` over steps with ``(d,)`` vectors (chunks of the spectrum, see
:mod:`schedopt.gaussian.chain`): every step is multiply-adds and one division per
eigenvalue (``kappa``); the variance ratio ends in one log per eigenvalue.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array

from .. import _multistep
from .._checks import is_concrete
from .chain import scan_steps
from .solvers import AbstractGaussianSolver, StepGrid


def split_grid(grid: StepGrid) -> tuple[Array, bool]:
    """``(positive levels, whether a last step to 0 follows)`` of a grid.

    >>> from schedopt.gaussian.solvers import sigma_grid
    >>> levels, to_zero = split_grid(sigma_grid([4.0, 1.0, 0.0]))
    >>> levels.tolist(), to_zero
    ([4.0, 1.0], True)
    """
    to_zero = grid.final_zero
    if to_zero is None:
        if not is_concrete(grid.sigmas):
            raise ValueError(
                "multistep solvers need to know whether the grid ends at 0: build it with "
                "`step_grid(schedule, num_steps, final)` or `sigma_grid(list)`"
            )
        to_zero = float(grid.sigmas[-1]) == 0.0
    return (grid.sigmas[:-1] if to_zero else grid.sigmas), bool(to_zero)


class AbstractGaussianMultistep(AbstractGaussianSolver):
    """A multistep solver's exact map on Gaussian data: ``chain`` runs all steps at once (a
    step's map depends on earlier steps, so there are no per-step coefficients)."""

    multistep: ClassVar[bool] = True

    def step_map(self, c, s, s_next, *extra):
        raise ValueError(
            f"the {self.name!r} solver is multistep: a step's map depends on the steps before "
            "it, so it has no per-step affine coefficients; use `output_moments` or "
            "`gaussian_kl`, which chain the whole grid"
        )

    def coefficients(self, c, grid):
        return self.step_map(c, *self.step_inputs(grid))

    @abc.abstractmethod
    def gain(self, c: Array, levels: Array, total_steps: int) -> Array:
        """``e_{M-1} / e_0`` per eigenvalue after the steps between ``levels``."""

    def chain(self, c, mean, grid, start):
        levels, to_zero = split_grid(grid)
        gain = self.gain(c, levels, levels.shape[0] - 1 + int(to_zero))
        s0, s_last = levels[0], levels[-1]
        # one log of the whole ratio G^2 w_0 (c + s_0^2) / (c + s_last^2), not a sum of logs
        ratio = gain**2 * start.w * ((c + s0**2) / (c + s_last**2))
        if to_zero:  # D = kappa e; target variance c
            kappa = c / (c + s_last**2)
            gain, ratio = gain * kappa, ratio * kappa
        return jnp.log(ratio), _offset(gain, start.delta)


def _offset(gain, delta0):
    return jnp.zeros_like(gain) if delta0 is None else gain * delta0


def _scan(body, carry, xs):
    return scan_steps(lambda cr, x: (body(cr, x), None), carry, xs)


class GaussianDPMSolverPP(AbstractGaussianMultistep):
    """DPM-Solver++(2M) (``order=2``, ``"dpmpp-2m"``) or (3M) (``"dpmpp-3m"``).

    >>> from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid
    >>> kl = gaussian_kl(Spectrum([1.0]), sigma_grid([80.0, 5.0, 0.5, 0.0]), "dpmpp-2m")
    >>> bool(kl > 0)
    True
    """

    order: int = 2
    lower_order_final: bool = True

    def __check_init__(self):
        if self.order not in (2, 3):
            raise ValueError(f"`order` must be 2 or 3, got order={self.order!r}")

    @property
    def name(self) -> str:
        return f"dpmpp-{self.order}m"

    def gain(self, c, levels, total_steps):
        plan = _multistep.dpmpp_plan(levels, total_steps, self.order, self.lower_order_final)

        def body(carry, x):
            e, history = carry
            ratio, weights, s = x
            return _multistep.linear_update(e, c / (c + s**2) * e, history, ratio, weights)

        e0 = jnp.ones_like(c)
        history = tuple(jnp.zeros_like(c) for _ in range(self.order - 1))
        xs = (plan.ratio, plan.weights, levels[:-1])
        return _scan(body, (e0, history), xs)[0]


class GaussianUniPC(AbstractGaussianMultistep):
    """UniPC (bh2, data prediction), ``order`` 1–3 (``"unipc"``: 2).

    >>> from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid
    >>> bool(gaussian_kl(Spectrum([1.0]), sigma_grid([80.0, 5.0, 0.5, 0.0]), "unipc") > 0)
    True
    """

    name: ClassVar[str] = "unipc"
    order: int = 2
    lower_order_final: bool = True

    def __check_init__(self):
        if self.order not in (1, 2, 3):
            raise ValueError(f"`order` must be 1, 2 or 3, got order={self.order!r}")

    def gain(self, c, levels, total_steps):
        plan = _multistep.unipc_plan(levels, total_steps, self.order, self.lower_order_final)

        def body(carry, x):
            e, corrected, history = carry
            *step, s = x
            return _multistep.unipc_update(e, c / (c + s**2) * e, corrected, history, step)

        e0 = jnp.ones_like(c)
        history = tuple(jnp.zeros_like(c) for _ in range(self.order))
        xs = (*plan[:5], levels[:-1])
        return _scan(body, (e0, e0, history), xs)[0]


class GaussianIPNDM(AbstractGaussianMultistep):
    """iPNDM, Adams–Bashforth up to ``max_order`` (``"ipndm"``: 4) on the EDM ODE.

    >>> from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid
    >>> bool(gaussian_kl(Spectrum([1.0]), sigma_grid([80.0, 5.0, 0.5, 0.0]), "ipndm") > 0)
    True
    """

    name: ClassVar[str] = "ipndm"
    max_order: int = 4

    def __check_init__(self):
        if self.max_order not in _multistep.ADAMS_BASHFORTH:
            raise ValueError(f"`max_order` must be 1, 2, 3 or 4, got max_order={self.max_order!r}")

    def gain(self, c, levels, total_steps):
        del total_steps
        plan = _multistep.ipndm_plan(levels, self.max_order)

        def body(carry, x):
            e, history = carry
            step, weights, s = x
            return _multistep.ipndm_update(e, s / (c + s**2) * e, history, step, weights)

        e0 = jnp.ones_like(c)
        history = tuple(jnp.zeros_like(c) for _ in range(self.max_order - 1))
        xs = (plan.step, plan.weights, levels[:-1])
        return _scan(body, (e0, history), xs)[0]


class GaussianDPMSolverPPSDE(AbstractGaussianMultistep):
    """DPM-Solver++(2M) SDE with ``eta`` (``"dpmpp-2m-sde"``): mean and covariance of
    ``(e_k, D_{k-1})`` per eigenvalue.

    >>> from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid
    >>> grid = sigma_grid([80.0, 5.0, 0.5, 0.0])
    >>> sde = gaussian_kl(Spectrum([1.0]), grid, GaussianDPMSolverPPSDE(eta=0.0))
    >>> bool(abs(sde - gaussian_kl(Spectrum([1.0]), grid, "dpmpp-2m")) < 1e-5)
    True
    """

    name: ClassVar[str] = "dpmpp-2m-sde"
    stochastic: ClassVar[bool] = True
    eta: float = 1.0

    def __check_init__(self):
        if is_concrete(self.eta) and not float(self.eta) >= 0.0:
            raise ValueError(f"`eta` must be >= 0, got eta={self.eta!r}")

    def gain(self, c, levels, total_steps):  # pragma: no cover - chain is overridden
        raise NotImplementedError

    def chain(self, c, mean, grid, start):
        levels, to_zero = split_grid(grid)
        s0, s_last = levels[0], levels[-1]
        delta0 = jnp.zeros_like(c) if start.delta is None else start.delta
        variance, mean_e = sde_moments(self, c, levels, start.w * (c + s0**2), delta0)
        if to_zero:
            kappa = c / (c + s_last**2)
            return jnp.log(kappa**2 * variance / c), kappa * mean_e
        return jnp.log(variance / (c + s_last**2)), mean_e


def sde_moments(solver, c, levels, variance0, delta0):
    """``(variance, mean offset)`` of ``e`` at the last of ``levels`` for DPM-Solver++(2M)
    SDE: the mean and 2x2 covariance of ``(e_k, D_{k-1})`` through
    ``M_k = [[r_k + w0_k kappa_k, w1_k], [kappa_k, 0]]`` plus the injected noise.

    >>> solver = GaussianDPMSolverPPSDE(eta=0.0)
    >>> v, m = sde_moments(solver, jnp.ones(1), jnp.array([1.0]), jnp.ones(1), jnp.ones(1))
    >>> float(v[0]), float(m[0])  # no step: the start
    (1.0, 1.0)
    """
    plan = _multistep.dpmpp_sde_plan(levels, solver.eta)

    def body(carry, x):
        mean_e, mean_m, p_ee, p_em, p_mm = carry
        ratio, weights, noise_scale, s = x
        kappa = c / (c + s**2)
        a, b = ratio + weights[0] * kappa, weights[1]
        return (
            a * mean_e + b * mean_m,
            kappa * mean_e,
            a**2 * p_ee + 2.0 * a * b * p_em + b**2 * p_mm + noise_scale**2,
            kappa * (a * p_ee + b * p_em),
            kappa**2 * p_ee,
        )

    zeros = jnp.zeros_like(c)
    xs = (plan.ratio, plan.weights, plan.noise_scale, levels[:-1])
    carry = _scan(body, (delta0, zeros, variance0, zeros, zeros), xs)
    return carry[2], carry[0]


#: The multistep solvers' exact Gaussian forms by name.
GAUSSIAN_MULTISTEP = {
    "dpmpp-2m": lambda **options: GaussianDPMSolverPP(order=2, **options),
    "dpmpp-3m": lambda **options: GaussianDPMSolverPP(order=3, **options),
    "unipc": GaussianUniPC,
    "ipndm": GaussianIPNDM,
    "dpmpp-2m-sde": GaussianDPMSolverPPSDE,
}
