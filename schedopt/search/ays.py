"""AYS-style schedule optimisation: minimise a KL upper bound between the true reverse SDE
and its discretisation (Align Your Steps; only its sigma lists were released, so the
bound and optimiser here are schedopt's own, derived for Gaussian data).

The bound. The reverse VE SDE in noise level ``s`` is ``dy = -2 s score(y, s) ds + sqrt(2 s) dW``;
the discretised process freezes the score at each step's start ``s_k`` on ``[s_{k+1}, s_k]``.
Girsanov and data processing give ``KL(true output || discretised output) <=
sum_k int_{s_{k+1}}^{s_k} s E||score(y_s, s) - score(y_{s_k}, s_k)||^2 ds`` with ``y`` on one
true path. For Gaussian data ``E||.||^2 = sum_d 1/(c_d + s^2) - 1/(c_d + s_k^2)`` **[derived]**, so
each interval costs ``sum_d w_d (log(A/B) - (A - B)/A) / 2`` with ``A = c + s_k^2``,
``B = c + s_{k+1}^2``, in closed form and additive over steps. For one eigenvalue its
optimum makes ``c + s_k^2`` geometric between the fixed ends **[derived]** (AM-GM), the
known case the tests check.

With the range free (``bounds``), the ends move too and the bound gains the initial
distributions' KL (data processing: ``KL(p_T || q_T)`` at the start level ``s_hi``, for VE
noise ``N(0, s_hi^2)``); the last interval ``s_lo -> 0`` is in the sum already.

The bound is an objective like any other (:class:`AYSBound`), and :func:`optimize_ays` fits
it with the package's one optax loop (:func:`schedopt.optimize.optimize`): the grid is a
:class:`~schedopt.schedules.PiecewiseLinear` schedule with a knot at every grid time (its
softmax logits are the log-sigma decrements), on a learnable
:class:`~schedopt.schedules.RangedSchedule` range when the ends are free.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_float, check_positive_int
from ..gaussian.spectrum import Spectrum
from ..objectives.base import AbstractObjective
from ..schedules.base import AbstractSchedule, grid
from ..schedules.learnable import PiecewiseLinear
from ..schedules.ranged import RangedSchedule
from .costs import ays_interval_bound, initial_mismatch
from .dp import SearchResult


def ays_bound(spectrum: Spectrum, sigmas) -> jax.Array:
    """The KL upper bound of a grid ``s_0 > ... > s_N >= 0``: sum of interval bounds.

    >>> round(float(ays_bound(Spectrum([1.0]), jnp.array([1.0, 0.0]))), 4)
    0.0966
    """
    sigmas = jnp.asarray(sigmas, dtype=jnp.result_type(float))
    return jnp.sum(ays_interval_bound(spectrum, sigmas[:-1], sigmas[1:]))


class AYSBound(AbstractObjective):
    """:func:`ays_bound` of the schedule's ``num_steps``-step ``final="zero"`` grid, plus,
    with ``with_start``, the VE start's KL at its first level (:func:`initial_mismatch`).

    Deterministic (ignores ``key``).

    >>> from schedopt.schedules import EDM
    >>> objective = AYSBound(Spectrum([1.0]), num_steps=4)
    >>> bool(objective(EDM(), None) == ays_bound(Spectrum([1.0]), grid(EDM(), 4)))
    True
    """

    name: ClassVar[str] = "ays-bound"
    spectrum: Spectrum
    num_steps: int = eqx.field(static=True, default=10)
    with_start: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        check_positive_int("num_steps", self.num_steps)

    def __call__(self, schedule: AbstractSchedule, key=None):
        sigmas = grid(schedule, self.num_steps)
        start = initial_mismatch(self.spectrum, sigmas[0]) if self.with_start else 0.0
        return start + ays_bound(self.spectrum, sigmas)

    def describe(self) -> dict:
        return {
            "objective": self.name,
            "num_steps": self.num_steps,
            "with_start": self.with_start,
            "spectrum_dim": self.spectrum.dim,
            "spectrum_fingerprint": self.spectrum.fingerprint(),
        }


def _grid_schedule(sigmas) -> PiecewiseLinear:
    """The knot schedule whose ``len(sigmas)``-step ``final="zero"`` grid is ``sigmas``
    (positive, strictly decreasing): a knot at every grid time, so its logits are the
    grid's log-sigma decrements; the search methods fit their grids as this schedule.

    >>> [round(float(s), 3) for s in grid(_grid_schedule([80.0, 1.0, 0.01]), 3)]
    [80.0, 1.0, 0.01, 0.0]
    """
    levels = np.asarray(sigmas, dtype=np.float64)
    if levels.ndim != 1 or levels.shape[0] < 2:
        raise ValueError(f"`sigmas` must hold >= 2 levels, got {levels.tolist()}")
    return PiecewiseLinear.from_logsnr_values(-2.0 * np.log(levels[::-1]))


def _fit_best(schedule, objective, num_iterations: int, learning_rate: float):
    """The best iterate of :func:`schedopt.optimize.optimize` (Adam) on a deterministic
    bound, validated after every step (the DMN bound's ``|c_k|`` make Adam's last iterate
    oscillate about the minimum). The validation is an ``eqx.Partial`` of the objective,
    so that a repeated search with the same settings reuses its compilation."""
    from ..optimize import optimize  # the loop imports orbax and tqdm: on first use

    result = optimize(
        schedule,
        objective,
        num_iterations=num_iterations,
        learning_rate=learning_rate,
        progress=False,
        chunk_size=1,
        validation=eqx.Partial(objective, key=None),
    )
    return result.schedule


def optimize_ays(
    spectrum: Spectrum,
    num_steps: int,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    num_iterations: int = 500,
    learning_rate: float = 0.05,
    rho: float = 7.0,
    bounds: tuple[float, float] | None = None,
) -> SearchResult:
    """Minimise :func:`ays_bound` over the ``num_steps`` positive levels of a ``final="zero"``
    grid (ends ``sigma_max`` and ``sigma_min`` fixed, then 0): :func:`schedopt.optimize.optimize`
    (Adam, ``learning_rate``) of :class:`AYSBound` over the grid's log-sigma decrements
    (a knot schedule with a knot at every grid time), started from EDM's ``rho`` grid.
    Returns the best grid seen.

    With ``bounds = (lo, hi)`` the ends are free inside them too (started at ``sigma_min``,
    ``sigma_max``; a :class:`~schedopt.schedules.RangedSchedule`), and the VE start's KL
    joins the bound (the module docstring); its ``cost`` is then that sum.

    >>> r = optimize_ays(Spectrum([1.0]), 4, num_iterations=50)
    >>> r.sigmas.shape, bool(r.sigmas[0] == 80.0)
    ((5,), True)
    >>> one = Spectrum([1.0])
    >>> free = optimize_ays(one, 4, num_iterations=200, bounds=(0.002, 80.0))
    >>> bool(free.cost < ays_bound(one, r.sigmas) + initial_mismatch(one, 80.0))
    True
    """
    n = check_positive_int("num_steps", num_steps)
    check_positive_float("sigma_min", sigma_min)
    check_positive_float("sigma_max", sigma_max)
    if not sigma_min < sigma_max:
        raise ValueError(f"need sigma_min < sigma_max, got {sigma_min=}, {sigma_max=}")
    num_iterations = check_positive_int("num_iterations", num_iterations)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    ramp = np.linspace(0.0, 1.0, max(n, 2))
    edm = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    if bounds is None and n <= 2:  # nothing free: the levels are the two ends (or sigma_max)
        sigmas = np.asarray([*[sigma_max, sigma_min][:n], 0.0])
        return SearchResult(sigmas, None, float(ays_bound(spectrum, sigmas)))
    schedule = _grid_schedule(edm)
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        if not (0 < lo <= sigma_min < sigma_max <= hi):
            raise ValueError(
                f"`bounds` must hold [sigma_min, sigma_max], got {bounds=}, {sigma_min=}, "
                f"{sigma_max=}"
            )
        schedule = RangedSchedule.from_schedule(schedule, (lo, hi), (sigma_min, sigma_max))
    objective = AYSBound(spectrum, n, with_start=bounds is not None)
    fitted = _fit_best(schedule, objective, num_iterations, learning_rate)
    sigmas = np.asarray(grid(fitted, n), dtype=np.float64)
    if bounds is None:
        sigmas[0], sigmas[n - 1] = sigma_max, sigma_min  # exact ends, not their float32 image
        return SearchResult(sigmas, None, float(ays_bound(spectrum, sigmas)))
    cost = float(ays_bound(spectrum, sigmas) + initial_mismatch(spectrum, sigmas[0]))
    return SearchResult(sigmas, None, cost)


def ays_single_eigenvalue_optimum(c: float, num_steps: int, sigma_min: float, sigma_max: float):
    """The exact optimum of :func:`ays_bound` for one eigenvalue ``c``: ``c + s_k^2`` geometric
    from ``c + sigma_max^2`` to ``c + sigma_min^2`` over the positive levels, then 0.

    >>> ays_single_eigenvalue_optimum(1.0, 3, 0.0, 3.0).round(3).tolist()
    [3.0, 1.47, 0.0, 0.0]
    """
    n = check_positive_int("num_steps", num_steps)
    x = np.geomspace(c + sigma_max**2, c + sigma_min**2, n)
    return np.concatenate([np.sqrt(np.maximum(x - c, 0.0)), [0.0]])
