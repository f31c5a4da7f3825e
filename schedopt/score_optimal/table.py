"""``CostTable``: the local transport cost along the whole noise range, and its length function.

The interval costs ``L_j`` of a fine geometric grid ``s_min = r_0 < ... < r_K = s_max``
(``K`` intervals, a few percent apart, so each is local) define the path length
``Lambda(r_k) = sum_{j < k} L_j^(1/order)`` from the clean end, interpolated in ``log s`` by
PCHIP. The equal-cost (score-optimal) schedule is ``Lambda^-1`` at equal increments: one
application of Algorithm 1 to the fine grid, resampled at any number of points.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._checks import check_positive_int, check_sigma_range
from .._interp import pchip
from ..models.base import AbstractDenoiser
from .costs import AbstractScoreCost
from .equal_cost import (
    _check_costs,
    _check_grid,
    cumulative_root_cost,
    equal_cost_update,
    schedule_from_noise_levels,
)


class CostTable(eqx.Module):
    """Interval costs on a fine grid of ``log s`` (increasing), with the cost's local ``order``.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.score_optimal import CorrectorCost
    >>> den = GaussianDenoiser(jnp.ones(1))
    >>> table = CostTable.estimate(CorrectorCost(), den, den.sample(jax.random.key(0), 1024),
    ...                            jax.random.key(1), num_intervals=64)
    >>> levels = table.noise_levels(10)  # the equal-cost 10-point grid, noisy first
    >>> [round(float(v), 3) for v in (levels[0], levels[-1])]
    [80.0, 0.002]
    """

    log_levels: Float[Array, " K+1"]
    costs: Float[Array, " K"]
    order: int = eqx.field(static=True, default=2)
    description: tuple[tuple[str, str], ...] = eqx.field(static=True, default=())

    kind: ClassVar[str] = "cost-table"

    def __check_init__(self):
        log_levels = _check_grid("log_levels", self.log_levels)
        _check_costs(self.costs, log_levels.shape[0] - 1)
        if not isinstance(self.order, int) or self.order < 1:
            raise ValueError(f"`order` must be an integer >= 1, got order={self.order!r}")

    @classmethod
    def estimate(
        cls,
        cost: AbstractScoreCost,
        denoiser: AbstractDenoiser,
        x0: ArrayLike,
        key: PRNGKeyArray,
        *,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        num_intervals: int = 256,
        symmetric: bool = True,
    ) -> CostTable:
        """Estimate ``cost`` on ``num_intervals`` geometric intervals of ``[sigma_min, sigma_max]``
        from the clean samples ``x0``; ``symmetric`` as in
        :meth:`AbstractScoreCost.interval_costs` (second-order accurate lengths)."""
        lo, hi = check_sigma_range(sigma_min, sigma_max)
        k = check_positive_int("num_intervals", num_intervals)
        levels = jnp.geomspace(hi, lo, k + 1)  # noisy first: the sampling direction
        # eager: the costs then run as a Python loop over one jitted body (see
        # AbstractScoreCost._mean_costs: XLA CPU loops with large bodies can hang)
        costs = cost.interval_costs(denoiser, jnp.asarray(x0), levels, key, 1, symmetric)
        description = (("cost", cost.name), ("velocity", str(getattr(cost, "velocity", ""))))
        return cls(
            log_levels=jnp.log(levels[::-1]),
            costs=costs[::-1],
            order=int(cost.order),
            description=description,
        )

    @property
    def sigma_min(self) -> float:
        return float(np.exp(np.asarray(self.log_levels[0])))

    @property
    def sigma_max(self) -> float:
        return float(np.exp(np.asarray(self.log_levels[-1])))

    def cumulative(self) -> Float[Array, " K+1"]:
        """``Lambda`` at the table's levels, from the clean end (0) to the noisy end."""
        return cumulative_root_cost(self.costs, self.order)

    @property
    def total_length(self) -> Array:
        """``Lambda(s_max)``: the path length over the table's range."""
        return self.cumulative()[-1]

    def length(self, noise_level: ArrayLike) -> Array:
        """``Lambda(s)``: PCHIP in ``log s`` through the cumulative root costs (differentiable)."""
        u = jnp.log(jnp.asarray(noise_level, dtype=self.log_levels.dtype))
        return pchip(self.log_levels, self.cumulative(), u)

    def noise_levels(self, num_points: int) -> Float[Array, " n"]:
        """The equal-cost grid of ``num_points`` levels, noisy first (Algorithm 1 on the table)."""
        u = equal_cost_update(
            self.log_levels[::-1], self.costs[::-1], order=self.order, num_points=num_points
        )
        return jnp.exp(u)

    def schedule(self, num_knots: int = 128):
        """A smooth schedule through the ``num_knots + 1``-point equal-cost grid (PCHIP in t)."""
        return schedule_from_noise_levels(
            self.noise_levels(check_positive_int("num_knots", num_knots) + 1)
        )

    def fingerprint(self) -> str:
        """A short hash of the table (levels, costs, order)."""
        h = hashlib.sha256()
        for arr in (self.log_levels, self.costs):
            h.update(np.asarray(arr, dtype=np.float64).tobytes())
        h.update(str(self.order).encode())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        """JSON-able summary for schedule cards."""
        return {
            **dict(self.description),
            "order": self.order,
            "num_intervals": int(self.costs.shape[0]),
            "sigma_min": self.sigma_min,
            "sigma_max": self.sigma_max,
            "total_length": float(self.total_length),
            "fingerprint": self.fingerprint(),
        }


def local_speed(table: CostTable) -> tuple[np.ndarray, np.ndarray]:
    """``(s, dLambda / dlog s)`` at the midpoints (geometric means) of the table's intervals.

    >>> t = CostTable(jnp.log(jnp.array([1.0, 2.0, 4.0])), jnp.array([1.0, 4.0]))
    >>> [round(float(v), 3) for v in local_speed(t)[1]]
    [1.443, 2.885]
    """
    u = np.asarray(table.log_levels, dtype=np.float64)
    root = np.maximum(np.asarray(table.costs, dtype=np.float64), 0.0) ** (1.0 / table.order)
    return np.exp(0.5 * (u[1:] + u[:-1])), root / np.diff(u)


__all__ = ["CostTable", "local_speed"]

_ = jax  # jax is used in doctests
