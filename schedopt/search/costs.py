"""Per-step costs ``C[i, j]`` of a step from teacher level ``s_i`` to ``s_j`` for :mod:`.dp`.

- :func:`gaussian_step_costs`: the exact Gaussian KL of *one* solver step started from the
  exact marginal at ``s_i`` (the closed form of :mod:`schedopt.gaussian` on a 2-point
  grid), ``sum_d w_d KL_d``.
- :func:`ays_step_costs`: the per-interval term of the AYS-style KL upper bound
  (:mod:`.ays`), additive over steps, so the DP finds its exact optimum on the grid.
- :func:`gaussian_range_costs`: the costs of where a grid starts and stops, which put the
  range in the DP's search space.
- :func:`trajectory_step_costs`: GITS's teacher-trajectory error, ``E ||step(y_i) - y_j||^2 / dim``
  with ``y`` a fine Heun solve of the probability-flow ODE of any denoiser (an oracle).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..gaussian.moments import OutputMoments, gaussian_kl, kl_per_direction
from ..gaussian.registry import solver_from_name
from ..gaussian.solvers import StepGrid
from ..gaussian.spectrum import Spectrum


def _pair_grid(teacher_sigmas):
    s = jnp.asarray(teacher_sigmas, dtype=jnp.result_type(float))
    m = s.shape[0]
    i, j = jnp.triu_indices(m, 1)
    return s, m, i, j


def _fill(m, i, j, values) -> np.ndarray:
    out = np.full((m, m), np.inf)
    out[np.asarray(i), np.asarray(j)] = np.asarray(values, dtype=np.float64)
    return out


def gaussian_step_costs(spectrum: Spectrum, teacher_sigmas, solver="euler", direction="forward"):
    """``C[i, j] = sum_d w_d KL_d`` of one deterministic ``solver`` step ``s_i -> s_j`` from
    the exact marginal ``N(mu, c + s_i^2)``; ``inf`` where ``j <= i``.

    >>> c = gaussian_step_costs(Spectrum([1.0]), [2.0, 1.0, 0.5])
    >>> bool(c[0, 2] > c[0, 1] > 0)
    True
    """
    solver = solver_from_name(solver)
    if solver.multistep:
        raise ValueError(
            f"`solver` must be a single-step solver for per-step Gaussian KL costs, got the "
            f"multistep {solver.name!r}: its steps depend on the ones before, so a step's KL "
            "is not a function of its two levels; fit it with `GaussianKL` instead"
        )
    if solver.stochastic:
        raise ValueError(
            f"`solver` must be deterministic for per-step Gaussian KL costs, got {solver.name!r};"
            " use `ays_step_costs` for stochastic samplers"
        )
    s, m, i, j = _pair_grid(teacher_sigmas)
    c = spectrum.eigenvalues

    def one(si, sj):
        co = solver.coefficients(c, StepGrid(sigmas=jnp.stack([si, sj])))
        moments = OutputMoments(jnp.zeros_like(c), co.log_r[0], c + sj**2)
        return jnp.sum(spectrum.weights * kl_per_direction(moments, direction))

    values = jax.jit(jax.vmap(one))(s[i], s[j])
    return _fill(m, i, j, values)


def initial_mismatch(spectrum: Spectrum, s, init: str = "ve", direction: str = "forward"):
    """KL between the exact marginal ``N(mu, c + s^2)`` and ``init``'s initial distribution
    at level ``s`` (``"ve"``: ``N(0, s^2)``; ``"vp"``: ``N(0, 1 + s^2)``; ``"exact"``: 0),
    summed over eigen-directions: ``sum_d w_d (c/s^2 - log(1 + c/s^2) + mu^2/s^2) / 2`` for
    ``"ve"`` forward. Jit-able and differentiable in ``s``.

    >>> round(float(initial_mismatch(Spectrum([1.0]), 1.0)), 4)  # (1 - log 2) / 2
    0.1534
    """
    from .._checks import check_choice
    from ..gaussian.moments import INITS

    check_choice("init", init, INITS)
    s = jnp.asarray(s, dtype=jnp.result_type(float))
    if init == "exact":
        return jnp.zeros((), s.dtype)
    c = spectrum.eigenvalues
    v0 = s**2 if init == "ve" else 1.0 + s**2
    moments = OutputMoments(-spectrum.mean, jnp.log(v0) - jnp.log(c + s**2), c + s**2)
    return jnp.sum(spectrum.weights * kl_per_direction(moments, direction))


def gaussian_range_costs(
    spectrum: Spectrum, teacher_sigmas, init: str = "ve", direction: str = "forward"
) -> tuple[np.ndarray, np.ndarray]:
    """``(start_cost, end_cost)`` per teacher level, for a DP search with the range free:

    - ``start_cost[i]``: the KL between the exact marginal ``N(mu, c + s_i^2)`` and the
      initial distribution of ``init`` at ``s_i`` (``"ve"``: ``N(0, s^2)``, ``"vp"``:
      ``N(0, 1 + s^2)``, ``"exact"``: 0), the price of starting there (a proxy: the
      sampler contracts the mismatch);
    - ``end_cost[j]``: the KL of the last step ``s_j -> 0`` from the exact marginal, which
      every solver takes as first order (it returns the denoiser's output).

    >>> start, end = gaussian_range_costs(Spectrum([1.0]), [10.0, 1.0, 0.1])
    >>> bool(start[0] < start[2]) and bool(end[0] > end[2])
    True
    """
    from .._checks import check_choice
    from ..gaussian.moments import INITS

    check_choice("init", init, INITS)
    s = jnp.asarray(teacher_sigmas, dtype=jnp.result_type(float))

    def start(si):
        return initial_mismatch(spectrum, si, init, direction)

    def end(sj):  # the one step sj -> 0 from the exact marginal: the library's own KL
        grid = StepGrid(sigmas=jnp.stack([sj, jnp.zeros_like(sj)]))
        return gaussian_kl(spectrum, grid, "euler", "exact", direction)

    costs = jax.jit(lambda x: (jax.vmap(start)(x), jax.vmap(end)(x)))(s)
    return np.asarray(costs[0], np.float64), np.asarray(costs[1], np.float64)


def ays_interval_bound(spectrum: Spectrum, s, s_next):
    """The AYS-style bound of one interval ``s -> s_next`` (see :func:`.ays.ays_bound`):
    ``sum_d w_d (log((c+s^2)/(c+s'^2)) - (s^2 - s'^2)/(c+s^2)) / 2``; broadcasts.

    >>> round(float(ays_interval_bound(Spectrum([1.0]), 1.0, 0.0)), 4)  # (log 2 - 1/2)/2
    0.0966
    """
    c = spectrum.eigenvalues
    s = jnp.asarray(s)[..., None]
    s_next = jnp.asarray(s_next)[..., None]
    a, b = c + s**2, c + s_next**2
    per = 0.5 * (jnp.log(a) - jnp.log(b) - (s**2 - s_next**2) / a)
    return jnp.sum(spectrum.weights * per, axis=-1)


def ays_step_costs(spectrum: Spectrum, teacher_sigmas):
    """``C[i, j]`` = :func:`ays_interval_bound` from ``s_i`` to ``s_j``; ``inf`` where ``j <= i``.

    >>> ays_step_costs(Spectrum([1.0]), [2.0, 1.0]).shape
    (2, 2)
    """
    s, m, i, j = _pair_grid(teacher_sigmas)
    return _fill(m, i, j, ays_interval_bound(spectrum, s[i], s[j]))


#: The solvers :func:`trajectory_step_costs` takes a step of.
STEPS = ("euler", "heun")


def _solve(denoiser, levels, y, solver: str):
    """The probability-flow ODE through ``levels`` (positive, decreasing) from ``y``, one
    ``solver`` step per interval: the samplers' own solve
    (:func:`schedopt.sampling.probability_flow`), not a copy of their steps."""
    from ..sampling.ode import probability_flow  # diffrax: only for the trajectory costs

    return probability_flow(denoiser, levels, y, solver=solver, to_zero=False)


def _check_teacher(teacher_sigmas):
    from .._checks import check_array_positive, check_strictly_decreasing

    s = jnp.asarray(teacher_sigmas, dtype=jnp.result_type(float))
    check_strictly_decreasing("teacher_sigmas", s)
    check_array_positive("teacher_sigmas", s)
    return s


def teacher_trajectory(denoiser, teacher_sigmas, y0, substeps: int = 4):
    """States ``y(s_k)`` of the probability-flow ODE at every teacher level (positive,
    strictly decreasing), shape ``(M, batch, ...)``, by Heun with ``substeps`` log-uniform
    substeps per interval.

    >>> from schedopt.models import GaussianDenoiser
    >>> teacher_trajectory(GaussianDenoiser(jnp.ones(2)), [4.0, 1.0], jnp.ones((3, 2))).shape
    (2, 3, 2)
    """
    s = _check_teacher(teacher_sigmas)
    frac = jnp.linspace(0.0, 1.0, substeps + 1)[1:]

    def interval(y, pair):
        a, b = pair
        levels = jnp.exp(jnp.log(a) + frac * (jnp.log(b) - jnp.log(a)))
        y = _solve(denoiser, jnp.concatenate([a[None], levels]), y, "heun")
        return y, y

    _, ys = jax.lax.scan(interval, jnp.asarray(y0), jnp.stack([s[:-1], s[1:]], axis=1))
    return jnp.concatenate([jnp.asarray(y0)[None], ys], axis=0)


def trajectory_step_costs(denoiser, teacher_sigmas, y0, solver: str = "euler", substeps: int = 4):
    """GITS cost ``C[i, j] = mean_b ||step(y_i; s_i -> s_j) - y_j||^2 / dim`` along a teacher
    solve from ``y0`` (a batch at ``s_0``); ``solver`` in ``"euler" | "heun"``, whose step
    is the samplers' own (:func:`schedopt.sampling.probability_flow` over one interval).

    >>> from schedopt.models import GaussianDenoiser
    >>> c = trajectory_step_costs(GaussianDenoiser(jnp.ones(2)), [4.0, 1.0, 0.1], jnp.ones((3, 2)))
    >>> bool(c[0, 2] > c[0, 1] >= 0)
    True
    """
    if solver not in STEPS:
        raise ValueError(f"`solver` must be one of {', '.join(STEPS)}; got solver={solver!r}")
    s, m, i, j = _pair_grid(_check_teacher(teacher_sigmas))
    ys = teacher_trajectory(denoiser, s, y0, substeps)

    def one(a, b):
        pred = _solve(denoiser, jnp.stack([s[a], s[b]]), ys[a], solver)
        err = (pred - ys[b]).reshape(pred.shape[0], -1)
        return jnp.mean(jnp.sum(err**2, axis=1)) / err.shape[1]

    values = jax.jit(lambda i, j: jax.lax.map(lambda ab: one(ab[0], ab[1]), jnp.stack([i, j], 1)))(
        i, j
    )
    return _fill(m, i, j, values)
