"""Dynamic-programming search over a teacher grid (GITS / OSS style).

Given ``M`` teacher noise levels ``s_0 > ... > s_{M-1}`` and a cost ``C[i, j]`` of one
sampler step from ``s_i`` to ``s_j`` (``i < j``), choose ``num_points`` of them minimising
``sum_k C[i_k, i_{k+1}]``: by default keeping both ends, or, with a ``start_cost`` and an
``end_cost`` per level, with the range in the search space too (the sum then adds
``start_cost[i_0] + end_cost[i_{n-1}]``: where the sampler starts and where it stops). The
exact optimum is the Bellman recursion ``V_n(j) = min_{i < j} V_{n-1}(i) + C[i, j]``:
``O(num_points M^2)``.
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


def _check_levels_cost(name: str, value, m: int) -> np.ndarray | None:
    if value is None:
        return None
    value = np.asarray(value, dtype=np.float64)
    if value.shape != (m,) or np.any(np.isnan(value)) or np.any(value == -np.inf):
        raise ValueError(
            f"`{name}` must be {m} costs (one per teacher level) free of NaN and -inf, "
            f"got shape {value.shape}"
        )
    return value


def dp_select(cost, num_points: int, start_cost=None, end_cost=None) -> tuple[np.ndarray, float]:
    """Indices ``i_0 < ... < i_{n-1}`` minimising ``sum_k cost[i_k, i_{k+1}]``.

    Only the strict upper triangle of ``cost`` is read (``cost[i, j]``: step ``i -> j``).
    Without ``start_cost`` the path starts at 0, without ``end_cost`` it ends at ``M - 1``;
    with them it starts and ends anywhere, paying ``start_cost[i_0] + end_cost[i_{n-1}]``.

    >>> c = np.array([[0, 1, 5], [0, 0, 1], [0, 0, 0]], float)
    >>> dp_select(c, 3)
    (array([0, 1, 2]), 2.0)
    >>> dp_select(c, 2, start_cost=[9.0, 0.0, 0.0], end_cost=[0.0, 0.0, 0.5])
    (array([1, 2]), 1.5)
    """
    cost = _check_cost(cost)
    m = cost.shape[0]
    n = check_positive_int("num_points", num_points)
    if not 2 <= n <= m:
        raise ValueError(f"`num_points` must be in [2, {m}] (the teacher grid's size), got {n}")
    start_cost = _check_levels_cost("start_cost", start_cost, m)
    end_cost = _check_levels_cost("end_cost", end_cost, m)
    step = np.where(np.triu(np.ones((m, m), bool), 1), cost, np.inf)
    if start_cost is None:
        value = np.full(m, np.inf)
        value[0] = 0.0
    else:
        value = start_cost.copy()
    parents = np.zeros((n, m), dtype=np.int64)
    for k in range(1, n):
        total = value[:, None] + step  # (from i, to j)
        parents[k] = np.argmin(total, axis=0)
        value = total[parents[k], np.arange(m)]
    final = value + (0.0 if end_cost is None else end_cost)
    last = m - 1 if end_cost is None else int(np.argmin(final))
    if not np.isfinite(final[last]):
        raise ValueError(f"no finite path of {n} points through the teacher grid")
    path = [last]
    for k in range(n - 1, 0, -1):
        path.append(int(parents[k][path[-1]]))
    return np.asarray(path[::-1]), float(final[last])


def dp_search(
    teacher_sigmas,
    cost,
    num_points: int,
    final_zero: bool = True,
    start_cost=None,
    end_cost=None,
) -> SearchResult:
    """:func:`dp_select` on a teacher grid; returns the chosen noise levels.

    ``teacher_sigmas`` are the positive teacher levels (noisy first); with ``final_zero``
    a 0 is appended to the result (the sampler's last step). ``start_cost`` and
    ``end_cost`` (per teacher level) put the range in the search space.

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
    indices, total = dp_select(cost, num_points, start_cost, end_cost)
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
