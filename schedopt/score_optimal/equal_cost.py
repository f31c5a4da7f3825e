"""Algorithm 1 of Williams et al. (Score-Optimal Diffusion Schedules): the equal-cost grid from
per-interval costs, and its fixed-point iteration.

Given a grid ``x_0, ..., x_M`` (times ``t`` or log noise levels, monotone) and the costs
``L_k`` of its intervals, the cumulative root cost ``Lambda_k = sum_{j < k} L_j^(1/order)``
is a monotone function of ``x``; the new grid is its inverse, by a monotone cubic (PCHIP)
interpolant, at equal increments: ``x*_k = Lambda^-1(k Lambda_M / M)``. Repeating it (with
costs re-estimated on each new grid) converges to a grid on which every interval carries the
same cost; ``gamma < 1`` blends ``x <- gamma x* + (1 - gamma) x`` (Algorithm 2's update).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._checks import check_finite_float, check_positive_int, is_concrete
from .._interp import pchip
from ..models.base import AbstractDenoiser
from ..schedules.learnable import MonotoneCubic
from .costs import AbstractScoreCost, check_noise_levels


def _check_grid(name: str, x: ArrayLike) -> Array:
    x = jnp.asarray(x, dtype=jnp.result_type(float))
    if x.ndim != 1 or x.shape[0] < 2:
        raise ValueError(f"`{name}` must be a 1-D array of >= 2 points, got shape {x.shape}")
    if is_concrete(x):
        steps = np.diff(np.asarray(x))
        if not np.all(np.isfinite(np.asarray(x))) or not (np.all(steps > 0) or np.all(steps < 0)):
            raise ValueError(
                f"`{name}` must be finite and strictly monotone, got {name}={np.asarray(x)!r:.200}"
            )
    return x


def _check_costs(costs: ArrayLike, num_intervals: int) -> Array:
    costs = jnp.asarray(costs, dtype=jnp.result_type(float))
    if costs.shape != (num_intervals,):
        raise ValueError(
            f"`costs` must hold one cost per interval, shape ({num_intervals},), got {costs.shape}"
        )
    if is_concrete(costs):
        arr = np.asarray(costs)
        if not np.all(np.isfinite(arr) & (arr >= 0)) or not np.any(arr > 0):
            raise ValueError(
                f"`costs` must be finite, >= 0 and not all zero, got costs={arr!r:.200}"
            )
    return costs


def _check_order(order) -> float:
    value = check_finite_float("order", order)
    if value <= 0:
        raise ValueError(f"`order` must be > 0, got order={order!r}")
    return value


def cumulative_root_cost(costs: Float[ArrayLike, " m"], order: float = 2) -> Float[Array, " m+1"]:
    """``Lambda_k = sum_{j < k} L_j^(1/order)``, ``Lambda_0 = 0``: the discrete path length.

    >>> cumulative_root_cost(jnp.array([1.0, 4.0, 9.0])).tolist()
    [0.0, 1.0, 3.0, 6.0]
    """
    costs = jnp.asarray(costs, dtype=jnp.result_type(float))
    root = jnp.maximum(costs, 0.0) ** (1.0 / _check_order(order))
    return jnp.concatenate([jnp.zeros((1,), root.dtype), jnp.cumsum(root)])


def equal_cost_update(
    grid: Float[ArrayLike, " m+1"],
    costs: Float[ArrayLike, " m"],
    *,
    order: float = 2,
    num_points: int | None = None,
) -> Float[Array, " n"]:
    """Algorithm 1: the grid with equal cost per interval, from the costs on ``grid``.

    ``x*_k = Lambda^-1(k / (n - 1))`` with ``Lambda`` the normalised cumulative root cost
    (:func:`cumulative_root_cost`) and its inverse a PCHIP interpolant through
    ``(Lambda_k, x_k)``; ``n = num_points`` (default: as many as ``grid``). The end points
    are kept exactly; the result is monotone like ``grid``. Jit-able and differentiable.

    >>> equal_cost_update(jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 1.0])).tolist()
    [0.0, 1.0, 2.0]
    >>> [round(v, 3) for v in equal_cost_update(jnp.array([0.0, 1.0, 2.0]),
    ...                                         jnp.array([4.0, 1.0])).tolist()]
    [0.0, 0.665, 2.0]
    """
    x = _check_grid("grid", grid)
    costs = _check_costs(costs, x.shape[0] - 1)
    n = x.shape[0] if num_points is None else check_positive_int("num_points", num_points)
    if n < 2:
        raise ValueError(f"`num_points` must be >= 2, got num_points={num_points!r}")
    cum = cumulative_root_cost(costs, order)
    # a zero-cost interval would make Lambda flat (not invertible): give it a tiny share
    cum = cum + jnp.linspace(0.0, 1e-9, cum.shape[0], dtype=cum.dtype) * cum[-1]
    levels = cum / cum[-1]
    out = pchip(levels, x, jnp.linspace(0.0, 1.0, n, dtype=x.dtype))
    return out.at[0].set(x[0]).at[-1].set(x[-1])


def subdivide(grid: Float[ArrayLike, " m+1"], num_substeps: int) -> Float[Array, " m*S+1"]:
    """Each interval of ``grid`` split into ``num_substeps`` equal parts (in the coordinate).

    >>> subdivide(jnp.array([0.0, 1.0, 3.0]), 2).tolist()
    [0.0, 0.5, 1.0, 2.0, 3.0]
    """
    x = jnp.asarray(grid, dtype=jnp.result_type(float))
    sub = check_positive_int("num_substeps", num_substeps)
    frac = jnp.arange(sub, dtype=x.dtype) / sub
    inner = x[:-1, None] + frac * (x[1:, None] - x[:-1, None])
    return jnp.concatenate([inner.reshape(-1), x[-1:]])


def coarsen_costs(fine_costs: ArrayLike, num_substeps: int, order: float = 2) -> Array:
    """Costs of the coarse intervals from their sub-steps': ``(sum_j L_j^(1/order))^order``.

    >>> coarsen_costs(jnp.array([1.0, 4.0, 9.0, 16.0]), 2).tolist()
    [9.0, 49.0]
    """
    sub = check_positive_int("num_substeps", num_substeps)
    root = jnp.maximum(jnp.asarray(fine_costs), 0.0).reshape(-1, sub) ** (1.0 / _check_order(order))
    return jnp.sum(root, axis=1) ** order


def refined_update(
    grid: Float[ArrayLike, " m+1"],
    fine_costs: Float[ArrayLike, " m*S"],
    num_substeps: int,
    order: float = 2,
) -> Float[Array, " m+1"]:
    """Algorithm 1 with the length known at the sub-steps too: the PCHIP inverse runs through
    the cumulative cost at every point of ``subdivide(grid, num_substeps)``, so a coarse grid
    is resampled accurately (the plain update interpolates between coarse points only)."""
    x = _check_grid("grid", grid)
    return equal_cost_update(
        subdivide(x, num_substeps), fine_costs, order=order, num_points=x.shape[0]
    )


def blend(
    grid: Float[ArrayLike, " m"], target: Float[ArrayLike, " m"], gamma: float
) -> Float[Array, " m"]:
    """Algorithm 2's damped update ``x <- gamma x* + (1 - gamma) x``, ``0 < gamma <= 1``.

    >>> blend(jnp.array([0.0, 1.0]), jnp.array([0.0, 3.0]), 0.5).tolist()
    [0.0, 2.0]
    """
    gamma = check_finite_float("gamma", gamma)
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"`gamma` must be in (0, 1], got gamma={gamma!r}")
    grid, target = jnp.asarray(grid), jnp.asarray(target)
    if grid.shape != target.shape:
        raise ValueError(f"`grid` and `target` shapes differ: {grid.shape} vs {target.shape}")
    return gamma * target + (1.0 - gamma) * grid


def cost_spread(costs: Float[ArrayLike, " m"], order: float = 2) -> Array:
    """Coefficient of variation of the root costs ``L_k^(1/order)``: 0 on an equal-cost grid.

    >>> float(cost_spread(jnp.array([1.0, 1.0, 1.0])))
    0.0
    """
    root = jnp.maximum(jnp.asarray(costs, dtype=jnp.result_type(float)), 0.0) ** (
        1.0 / _check_order(order)
    )
    return jnp.std(root) / jnp.mean(root)


class EqualCostResult(NamedTuple):
    """What :func:`equal_cost_noise_levels` returns."""

    noise_levels: np.ndarray
    """The final grid, decreasing (noisy first)."""
    costs: np.ndarray
    """The interval costs on the final grid."""
    spreads: np.ndarray
    """:func:`cost_spread` of the costs on the grid before each update, then on the final one."""
    changes: np.ndarray
    """``max_k |log s_k^new - log s_k^old|`` of each update."""


def equal_cost_noise_levels(
    cost: AbstractScoreCost,
    denoiser: AbstractDenoiser,
    x0: ArrayLike,
    noise_levels: Float[ArrayLike, " m"],
    key: PRNGKeyArray,
    *,
    num_iterations: int = 10,
    gamma: float = 1.0,
    tolerance: float = 0.0,
    num_substeps: int = 8,
    symmetric: bool = True,
) -> EqualCostResult:
    """Iterate Algorithm 1 on a grid of noise levels ``s_0 > ... > s_M > 0`` (ends kept).

    Each iteration estimates ``cost``'s costs on ``num_substeps`` geometric sub-steps of
    every interval (same ``key``, hence the same Monte Carlo sample, every time;
    ``symmetric`` as in :meth:`AbstractScoreCost.interval_costs`: the defaults measure each
    interval's length to second order, so the fixed point is the continuous equal-cost
    schedule), applies :func:`refined_update` in the coordinate ``log s`` and blends with
    weight ``gamma``. Stops after
    ``num_iterations`` or when the largest change in ``log s`` falls below ``tolerance``.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.score_optimal import CorrectorCost
    >>> den = GaussianDenoiser(jnp.ones(1))
    >>> x0 = den.sample(jax.random.key(0), 2048)
    >>> res = equal_cost_noise_levels(CorrectorCost(), den, x0, jnp.geomspace(80, 0.002, 8),
    ...                               jax.random.key(1), num_iterations=8)
    >>> bool(res.spreads[-1] < 0.01 < res.spreads[0])
    True
    """
    levels = check_noise_levels("noise_levels", noise_levels)
    iterations = check_positive_int("num_iterations", num_iterations)
    tolerance = check_finite_float("tolerance", tolerance)
    sub = check_positive_int("num_substeps", num_substeps)
    log_levels = jnp.log(levels)
    _check_grid("noise_levels", log_levels)

    @jax.jit
    def estimate(u):  # costs at the sub-steps (geometric in s), and per interval
        fine = cost.interval_costs(denoiser, x0, jnp.exp(subdivide(u, sub)), key, 1, symmetric)
        return fine, coarsen_costs(fine, sub, cost.order)

    spreads, changes = [], []
    for _ in range(iterations):
        fine, costs = estimate(log_levels)
        spreads.append(float(cost_spread(costs, cost.order)))
        new = blend(log_levels, refined_update(log_levels, fine, sub, cost.order), gamma)
        changes.append(float(jnp.max(jnp.abs(new - log_levels))))
        log_levels = new
        if changes[-1] <= tolerance:
            break
    costs = estimate(log_levels)[1]
    spreads.append(float(cost_spread(costs, cost.order)))
    return EqualCostResult(
        noise_levels=np.exp(np.asarray(log_levels, dtype=np.float64)),
        costs=np.asarray(costs, dtype=np.float64),
        spreads=np.asarray(spreads),
        changes=np.asarray(changes),
    )


def schedule_from_noise_levels(noise_levels: ArrayLike) -> MonotoneCubic:
    """A smooth schedule through a grid ``s_0 > ... > s_M``: ``s(1 - k/M) = s_k`` (PCHIP in ``t``).

    Its ``(M + 1)``-step grid with ``final="zero"`` is the given grid followed by 0.

    >>> from schedopt.schedules import grid
    >>> s = schedule_from_noise_levels(jnp.array([80.0, 1.0, 0.002]))
    >>> [round(float(v), 3) for v in grid(s, 3)]
    [80.0, 1.0, 0.002, 0.0]
    """
    levels = np.asarray(noise_levels, dtype=np.float64)
    check_noise_levels("noise_levels", levels)
    return MonotoneCubic.from_logsnr_values(-2.0 * np.log(levels[::-1]))


def edm_grid(sigma_min: float, sigma_max: float, num_points: int, rho: ArrayLike) -> Array:
    """EDM's ``s_k = (s_max^(1/rho) + k/(n-1) (s_min^(1/rho) - s_max^(1/rho)))^rho``, noisy first.

    >>> [round(float(v), 3) for v in edm_grid(0.002, 80.0, 3, 1.0)]
    [80.0, 40.001, 0.002]
    """
    rho = jnp.asarray(rho, dtype=jnp.result_type(float))
    u = jnp.linspace(0.0, 1.0, check_positive_int("num_points", num_points))
    hi, lo = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    return (hi + u * (lo - hi)) ** rho


class RhoFit(NamedTuple):
    """What :func:`fit_edm_rho` returns."""

    rho: float
    rms_log_error: float
    """Root mean square of ``log s_k - log s_k^EDM`` at the fitted ``rho``."""


def fit_edm_rho(noise_levels: ArrayLike, rho_range: tuple[float, float] = (0.3, 1000.0)) -> RhoFit:
    """The EDM exponent whose grid (same ends and size) is closest to ``noise_levels`` in ``log s``.

    Least squares over ``log rho`` (a dense scan, then a bounded scalar refinement).

    >>> fit = fit_edm_rho(edm_grid(0.002, 80.0, 20, 7.0))
    >>> round(fit.rho, 3)
    7.0
    """
    from scipy.optimize import minimize_scalar

    levels = np.asarray(noise_levels, dtype=np.float64)
    check_noise_levels("noise_levels", levels, 3)
    lo, hi = float(levels[-1]), float(levels[0])
    if not hi > lo:
        raise ValueError("`noise_levels` must start at the largest level and end at the smallest")
    target = np.log(levels)
    u = np.linspace(0.0, 1.0, levels.shape[0])

    def loss(log_rho):
        rho = np.exp(log_rho)
        grid = (hi ** (1.0 / rho) + u * (lo ** (1.0 / rho) - hi ** (1.0 / rho))) ** rho
        return float(np.mean((np.log(grid) - target) ** 2))

    bounds = np.log(np.asarray(rho_range, dtype=np.float64))
    scan = np.linspace(bounds[0], bounds[1], 400)
    best = scan[int(np.argmin([loss(v) for v in scan]))]
    step = scan[1] - scan[0]
    res = minimize_scalar(
        loss,
        bounds=(max(bounds[0], best - step), min(bounds[1], best + step)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return RhoFit(rho=float(np.exp(res.x)), rms_log_error=float(np.sqrt(res.fun)))
