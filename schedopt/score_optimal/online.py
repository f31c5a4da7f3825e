"""Algorithm 2 of Williams et al. (Score-Optimal Diffusion Schedules): adapt the sampling grid
online while a denoiser trains.

At every log boundary of :func:`schedopt.models.training.train_denoiser` the hook estimates
the transport costs of the current grid ``t_0 = 1 > ... > t_M = 0`` (noise levels
``s_k = base.noise_level(t_k)``) with the current EMA model, computes Algorithm 1's
equal-cost grid ``t*`` and blends ``t <- gamma t* + (1 - gamma) t``. The log records the
grid and the spread of its per-step costs. Only the sampling grid adapts; the training
noise distribution is left as it is.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._checks import check_finite_float, check_positive_int
from ..models.base import AbstractDenoiser
from ..schedules.base import AbstractSchedule
from .costs import AbstractScoreCost, check_clean_batch
from .equal_cost import (
    blend,
    coarsen_costs,
    cost_spread,
    refined_update,
    schedule_from_noise_levels,
    subdivide,
)


class OnlineEqualCost(eqx.Module):
    """Settings of Algorithm 2: ``cost``, the ``base`` schedule (``t -> s``), ``num_points``
    grid points, blend weight ``gamma``, Monte Carlo batch ``num_samples``, ``num_substeps``
    sub-steps per interval (uniform in ``t``; :func:`refined_update`), ``symmetric`` (see
    :meth:`AbstractScoreCost.interval_costs`) and ``seed``.

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.schedules import EDM
    >>> from schedopt.score_optimal import CorrectorCost
    >>> online = OnlineEqualCost(CorrectorCost(), EDM(), num_points=8, gamma=0.5)
    >>> den = GaussianDenoiser(jnp.ones(1))
    >>> x0 = den.sample(jax.random.key(0), 256)
    >>> times, costs = online.update(online.initial_times(), den, x0, jax.random.key(1))
    >>> times.shape, costs.shape
    ((8,), (7,))
    """

    cost: AbstractScoreCost
    base: AbstractSchedule
    num_points: int = eqx.field(static=True, default=32)
    gamma: float = eqx.field(static=True, default=0.05)
    num_samples: int = eqx.field(static=True, default=256)
    num_substeps: int = eqx.field(static=True, default=4)
    symmetric: bool = eqx.field(static=True, default=True)
    seed: int = eqx.field(static=True, default=0)

    def __check_init__(self):
        if not isinstance(self.cost, AbstractScoreCost):
            raise ValueError(f"`cost` must be an AbstractScoreCost, got cost={self.cost!r}")
        if not isinstance(self.base, AbstractSchedule):
            raise ValueError(f"`base` must be a schedule, got base={self.base!r}")
        if check_positive_int("num_points", self.num_points) < 3:
            raise ValueError(f"`num_points` must be >= 3, got num_points={self.num_points!r}")
        gamma = check_finite_float("gamma", self.gamma)
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"`gamma` must be in (0, 1], got gamma={self.gamma!r}")
        check_positive_int("num_samples", self.num_samples)
        check_positive_int("num_substeps", self.num_substeps)

    def initial_times(self) -> Float[Array, " m"]:
        """``t_k = 1 - k / (M)``: the base schedule's own grid, noisy first."""
        return jnp.linspace(1.0, 0.0, self.num_points)

    def update(
        self,
        times: Float[ArrayLike, " m"],
        denoiser: AbstractDenoiser,
        x0: ArrayLike,
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, " m"], Float[Array, " m-1"]]:
        """One Algorithm-2 update: ``(gamma t* + (1 - gamma) t, costs on t)``."""
        times = jnp.asarray(times, dtype=jnp.result_type(float))
        sub, order = self.num_substeps, self.cost.order
        levels = self.base.noise_level(subdivide(times, sub))
        fine = self.cost.interval_costs(denoiser, x0, levels, key, 1, self.symmetric)
        target = refined_update(times, fine, sub, order)
        return blend(times, target, self.gamma), coarsen_costs(fine, sub, order)

    def hook(self, data: ArrayLike, times: ArrayLike | None = None) -> OnlineHook:
        """A ``train_denoiser(..., hook=...)`` callable that runs :meth:`update` at each log.

        ``num_samples`` clean samples of ``data`` (drawn once from ``seed``) and one noise
        draw are reused at every update, so cost changes come from the model and the grid.
        ``times`` resumes from a logged grid (default: :meth:`initial_times`).
        """
        return OnlineHook(self, data, times)


class OnlineHook:
    """Stateful hook ``(step, model) -> log entries`` for :func:`train_denoiser` (see
    :meth:`OnlineEqualCost.hook`). ``times`` holds the current grid; ``history`` every record.

    The record's entries: ``schedule_times`` and ``schedule_noise_levels`` (the grid the
    costs were measured on), ``next_schedule_times`` (the blended grid after the update; a
    resumed run starts from it, see :meth:`resume`), ``interval_costs``, ``cost_spread``
    (coefficient of variation of ``L_k^(1/order)``; 0 when every step costs the same) and
    ``cost_max_ratio``.
    """

    def __init__(self, online: OnlineEqualCost, data: ArrayLike, times: ArrayLike | None = None):
        data = check_clean_batch(np.asarray(data, dtype=np.float32))
        rng = np.random.default_rng(online.seed)
        n = min(online.num_samples, data.shape[0])
        self.online = online
        self.x0 = jnp.asarray(np.asarray(data)[rng.choice(data.shape[0], n, replace=False)])
        self.key = jax.random.key(online.seed)
        self.times = online.initial_times() if times is None else jnp.asarray(times)
        if self.times.shape != (online.num_points,):
            raise ValueError(
                f"`times` must have shape ({online.num_points},), got {self.times.shape}"
            )
        self.history: list[dict] = []
        self._update = eqx.filter_jit(online.update)

    def __call__(self, step: int, model) -> dict:
        from ..models.nnx_adapter import NNXDenoiser

        denoiser = model if isinstance(model, AbstractDenoiser) else NNXDenoiser.from_module(model)
        old = self.times
        self.times, costs = self._update(old, denoiser, self.x0, self.key)
        costs = np.asarray(costs, dtype=np.float64)
        record = {
            "schedule_times": np.asarray(old, dtype=np.float64).tolist(),
            "schedule_noise_levels": np.asarray(
                self.online.base.noise_level(old), dtype=np.float64
            ).tolist(),
            "next_schedule_times": np.asarray(self.times, dtype=np.float64).tolist(),
            "interval_costs": costs.tolist(),
            "cost_spread": float(cost_spread(costs, self.online.cost.order)),
            "cost_max_ratio": float(costs.max() / max(costs.min(), 1e-300)),
        }
        self.history.append({"step": int(step), **record})
        return record

    def resume(self, history: list[dict]) -> None:
        """Continue a resumed run: the grid becomes the last record's ``next_schedule_times``
        and ``history`` the records that have one (``train_denoiser`` calls this with the
        log records it keeps). Records without a grid leave the hook as it is.
        """
        kept = [r for r in history if "next_schedule_times" in r]
        if not kept:
            return
        times = jnp.asarray(kept[-1]["next_schedule_times"], dtype=self.times.dtype)
        if times.shape != self.times.shape:
            raise ValueError(
                f"the log's grid has {times.shape[0]} points but `num_points` is "
                f"{self.times.shape[0]}; resume with the same num_points"
            )
        self.times = times
        self.history = [dict(r) for r in kept]

    def noise_levels(self) -> np.ndarray:
        """The current grid's noise levels, noisy first."""
        return np.asarray(self.online.base.noise_level(self.times), dtype=np.float64)

    def schedule(self):
        """A smooth schedule through the current grid (see ``schedule_from_noise_levels``)."""
        return schedule_from_noise_levels(self.noise_levels())
