"""A DMN-style analytic bound for the multistep solvers, and its minimiser (no model, no data).

Xue et al., "Accelerating Diffusion Sampling with Optimized Time Steps" (DMN), choose the
interior logSNRs of a DPM-Solver++ / UniPC grid by minimising a closed-form bound on the
global error, written as the model's errors propagated to the output: in the units
``u = y / s`` (``x / sigma``) a data-prediction step is ``u' = u + sum_j (W_j / s') D_j`` —
the linear part is the identity — so the output's dependence on each evaluation
``D_k = D(y_k; s_k)`` is the sum of its coefficients over the steps that use it,
``c_k = sum_i W_{i, k} / s_{i+1}``. With the model's error at level ``s`` modelled as
``e(s)`` (DMN: ``sigma^2 / alpha = s^2 / sqrt(1 + s^2)`` for latent models, ``sigma / alpha
= s`` for pixel models), the bound is

    B = s_{M-1} sum_k |c_k| e(s_k)  (+ e(s_{M-1}) when a last step to 0 returns D),

the error of the state at the last positive level plus, on a ``final="zero"`` grid, the
last evaluation's own. It is written here from that description with schedopt's own
coefficient plans (:mod:`schedopt._multistep`, so the orders and their lowering at the ends
are exactly the sampler's); UniPC's corrector is ignored, as in DMN. The ends are fixed and
the interior minimised by Adam on softmax log-sigma decrements (DMN uses scipy's
``trust-constr``), through :func:`schedopt.optimize.optimize` as
:func:`~schedopt.search.optimize_ays` (the objective :class:`DMNBound`).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .. import _multistep
from .._checks import check_choice, check_positive_float, check_positive_int, is_concrete
from ..objectives.base import AbstractObjective
from ..schedules.base import AbstractSchedule, grid
from .ays import _fit_best, _grid_schedule
from .dp import SearchResult

ERROR_MODELS = ("latent", "pixel")
SOLVERS = ("dpmpp-2m", "dpmpp-3m", "unipc")


def model_error(s, error: str = "latent"):
    """DMN's model-error proxy at EDM level ``s``: ``s^2 / sqrt(1 + s^2)`` or ``s``.

    >>> round(float(model_error(1.0)), 4)
    0.7071
    """
    check_choice("error", error, ERROR_MODELS)
    s = jnp.asarray(s)
    return s**2 / jnp.sqrt(1.0 + s**2) if error == "latent" else s


def _coefficients(levels, total_steps: int, solver: str):
    n = levels.shape[0] - 1
    if solver == "unipc":
        plan = _multistep.unipc_plan(levels, total_steps)
        weights = plan.predictor
    else:
        order = 2 if solver == "dpmpp-2m" else 3
        weights = _multistep.dpmpp_plan(levels, total_steps, order).weights
    # c_k = sum_i W[i, i - k] / s_{i+1}: scatter each step's weights onto its nodes
    c = jnp.zeros((n + 1,), levels.dtype)
    for j in range(weights.shape[1]):
        nodes = np.arange(n) - j
        valid = nodes >= 0
        c = c.at[np.where(valid, nodes, 0)].add(jnp.where(valid, weights[:, j], 0.0) / levels[1:])
    return c


def dmn_bound(sigmas, solver: str = "dpmpp-2m", error: str = "latent"):
    """The bound ``B`` of a grid ``s_0 > ... > s_N >= 0`` for ``solver`` (module docstring).

    >>> import numpy as np
    >>> rough = dmn_bound(np.geomspace(80, 0.002, 6).tolist() + [0.0])
    >>> bool(float(rough) > 0)
    True
    """
    check_choice("solver", solver, SOLVERS)
    sigmas = jnp.asarray(sigmas, dtype=jnp.result_type(float))
    to_zero = bool(float(sigmas[-1]) == 0.0) if is_concrete(sigmas) else True
    levels = sigmas[:-1] if to_zero else sigmas
    n = levels.shape[0] - 1
    if n < 1:
        return model_error(levels[-1], error) if to_zero else jnp.zeros(())
    c = _coefficients(levels, n + int(to_zero), solver)
    bound = levels[-1] * jnp.sum(jnp.abs(c) * model_error(levels, error))
    return bound + (model_error(levels[-1], error) if to_zero else 0.0)


class DMNBound(AbstractObjective):
    """:func:`dmn_bound` of the schedule's ``num_steps``-step ``final="zero"`` grid.

    Deterministic (ignores ``key``).

    >>> from schedopt.schedules import EDM
    >>> bool(DMNBound(num_steps=5)(EDM(), None) == dmn_bound(grid(EDM(), 5)))
    True
    """

    name: ClassVar[str] = "dmn-bound"
    num_steps: int = eqx.field(static=True, default=10)
    solver: str = eqx.field(static=True, default="dpmpp-2m")
    error: str = eqx.field(static=True, default="latent")

    def __check_init__(self):
        check_positive_int("num_steps", self.num_steps)
        check_choice("solver", self.solver, SOLVERS)
        check_choice("error", self.error, ERROR_MODELS)

    def __call__(self, schedule: AbstractSchedule, key=None):
        return dmn_bound(grid(schedule, self.num_steps), self.solver, self.error)


def optimize_dmn(
    num_steps: int,
    solver: str = "dpmpp-2m",
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    error: str = "latent",
    num_iterations: int = 500,
    learning_rate: float = 0.05,
) -> SearchResult:
    """Minimise :func:`dmn_bound` over the interior levels of a ``num_steps``-step
    ``final="zero"`` grid (ends fixed), started from logSNR-uniform as DMN does; the best
    grid seen (:func:`schedopt.optimize.optimize` of :class:`DMNBound`, validated every step).

    >>> r = optimize_dmn(5, num_iterations=100)
    >>> r.sigmas.shape, bool(r.sigmas[0] == 80.0)
    ((6,), True)
    """
    n = check_positive_int("num_steps", num_steps)
    check_choice("solver", solver, SOLVERS)
    check_choice("error", error, ERROR_MODELS)
    check_positive_float("sigma_min", sigma_min)
    if not sigma_min < sigma_max:
        raise ValueError(f"need sigma_min < sigma_max, got {sigma_min=}, {sigma_max=}")
    num_iterations = check_positive_int("num_iterations", num_iterations)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if n <= 2:
        sigmas = np.asarray([sigma_max, sigma_min][:n] + [0.0])
        return SearchResult(sigmas, None, float(dmn_bound(sigmas, solver, error)))
    start = _grid_schedule(np.geomspace(sigma_max, sigma_min, n))  # logSNR-uniform
    fitted = _fit_best(start, DMNBound(n, solver, error), num_iterations, learning_rate)
    sigmas = np.asarray(grid(fitted, n), dtype=np.float64)
    sigmas[0], sigmas[n - 1] = sigma_max, sigma_min  # exact ends, not their float32 image
    return SearchResult(sigmas, None, float(dmn_bound(sigmas, solver, error)))
