"""Dynamic-programming search over a teacher grid (GITS / OSS style).

Given ``M`` teacher noise levels ``s_0 > ... > s_{M-1}`` and a cost ``C[i, j]`` of one
sampler step from ``s_i`` to ``s_j`` (``i < j``), choose ``num_points`` of them, always
keeping both ends, minimising ``sum_k C[i_k, i_{k+1}]``. The exact optimum is the
Bellman recursion ``V_n(j) = min_{i < j} V_{n-1}(i) + C[i, j]``: ``O(num_points M^2)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_int


class SearchResult(NamedTuple):
    """A searched sampling grid: noise levels (noisy first, a final 0 appended when the
    search was for a ``final="zero"`` grid), the teacher indices chosen, and the cost."""

    sigmas: np.ndarray
    indices: np.ndarray | None
    cost: float


def _check_cost(cost) -> np.ndarray:
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1] or cost.shape[0] < 2:
        raise ValueError(f"`cost` must be a square (M, M) matrix with M >= 2, got {cost.shape}")
    upper = cost[np.triu_indices(cost.shape[0], 1)]
    if np.any(np.isnan(upper)) or np.any(upper == -np.inf):
        raise ValueError("`cost` must be free of NaN and -inf above the diagonal")
    return cost


def dp_select(cost, num_points: int) -> tuple[np.ndarray, float]:
    """Indices ``0 = i_0 < ... < i_{n-1} = M - 1`` minimising ``sum_k cost[i_k, i_{k+1}]``.

    Only the strict upper triangle of ``cost`` is read (``cost[i, j]``: step ``i -> j``).

    >>> c = np.array([[0, 1, 5], [0, 0, 1], [0, 0, 0]], float)
    >>> dp_select(c, 3)
    (array([0, 1, 2]), 2.0)
    """
    cost = _check_cost(cost)
    m = cost.shape[0]
    n = check_positive_int("num_points", num_points)
    if not 2 <= n <= m:
        raise ValueError(f"`num_points` must be in [2, {m}] (the teacher grid's size), got {n}")
    step = np.where(np.triu(np.ones((m, m), bool), 1), cost, np.inf)
    value = np.full(m, np.inf)
    value[0] = 0.0
    parents = np.zeros((n, m), dtype=np.int64)
    for k in range(1, n):
        total = value[:, None] + step  # (from i, to j)
        parents[k] = np.argmin(total, axis=0)
        value = total[parents[k], np.arange(m)]
    if not np.isfinite(value[m - 1]):
        raise ValueError(f"no finite path of {n} points through the teacher grid")
    path = [m - 1]
    for k in range(n - 1, 0, -1):
        path.append(int(parents[k][path[-1]]))
    return np.asarray(path[::-1]), float(value[m - 1])


def dp_search(teacher_sigmas, cost, num_points: int, final_zero: bool = True) -> SearchResult:
    """:func:`dp_select` on a teacher grid; returns the chosen noise levels.

    ``teacher_sigmas`` are the positive teacher levels (noisy first); with ``final_zero``
    a 0 is appended to the result (the sampler's last step, common to every candidate).

    >>> levels = np.geomspace(80, 0.002, 5)
    >>> c = np.abs(np.log(levels)[:, None] - np.log(levels)[None, :]) ** 2
    >>> dp_search(levels, c, 3).sigmas.round(3).tolist()
    [80.0, 0.4, 0.002, 0.0]
    """
    teacher = np.asarray(teacher_sigmas, dtype=np.float64)
    if teacher.ndim != 1 or np.any(np.diff(teacher) >= 0) or np.any(teacher <= 0):
        raise ValueError(
            f"`teacher_sigmas` must be positive and strictly decreasing, got {teacher.tolist()}"
        )
    cost = _check_cost(cost)
    if cost.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"`cost` is {cost.shape} but `teacher_sigmas` has {teacher.shape[0]} levels"
        )
    indices, total = dp_select(cost, num_points)
    sigmas = teacher[indices]
    if final_zero:
        sigmas = np.concatenate([sigmas, [0.0]])
    return SearchResult(sigmas=sigmas, indices=indices, cost=total)


def teacher_levels(sigma_min: float = 0.002, sigma_max: float = 80.0, num_levels: int = 128):
    """``num_levels`` log-uniform teacher noise levels from ``sigma_max`` down to ``sigma_min``.

    >>> teacher_levels(1.0, 100.0, 3).tolist()
    [100.0, 10.0, 1.0]
    """
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min=}, {sigma_max=}")
    n = check_positive_int("num_levels", num_levels)
    if n < 2:
        raise ValueError(f"`num_levels` must be >= 2, got {n}")
    return np.geomspace(sigma_max, sigma_min, n)


def schedule_from_sigmas(sigmas):
    """A schedule whose ``final="zero"`` grid with ``len(positive sigmas)`` steps is exactly
    ``sigmas`` (a ``Tabulated`` logSNR table, cleanest first), so every sampler and the
    Gaussian KL can use a searched grid as they use any schedule.

    >>> from schedopt.schedules import grid
    >>> s = schedule_from_sigmas([80.0, 1.0, 0.01, 0.0])
    >>> [round(float(x), 3) for x in grid(s, 3)]
    [80.0, 1.0, 0.01, 0.0]
    """
    from ..schedules import Tabulated

    levels = np.asarray(sigmas, dtype=np.float64)
    levels = levels[levels > 0]
    if levels.shape[0] < 2:
        raise ValueError(f"`sigmas` needs >= 2 positive levels, got {np.asarray(sigmas).tolist()}")
    return Tabulated(jnp.asarray(-2.0 * np.log(levels[::-1])))
