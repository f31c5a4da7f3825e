"""Learnable schedule families: monotone and endpoint-exact for every parameter value.

Each writes ``lam(t) = (1 - f(t)) lam_max + f(t) lam_min`` with ``f: [0, 1] -> [0, 1]``
strictly increasing, ``f(0) = 0``, ``f(1) = 1`` by construction:

- ``PiecewiseLinear``: knots at ``t_j = j / K``, increments ``softmax(logits)`` (LD3-style).
- ``MonotoneCubic``: the same knots joined by a monotone cubic (PCHIP) interpolant.
- ``MonotoneMLP``: VDM's monotone network, weights passed through ``softplus``.

``from_schedule`` initialises each to approximate any schedule (VDM: a learned schedule
starts as a known one). Endpoints are static and never trained.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from .._checks import check_array_finite, check_positive_int, check_strictly_decreasing
from .._interp import pchip
from .base import AbstractEndpointSchedule, AbstractSchedule, lerp_logsnr

# Every increment keeps at least this share of the total, so ``f`` stays strictly
# increasing even when softmax underflows.
_MIN_SHARE = 1e-6


class AbstractKnotSchedule(AbstractEndpointSchedule):
    """Base of the knot families: ``f`` at ``t_j = j / K`` is the cumulative softmax share."""

    logits: Float[Array, " K"]

    def __check_init__(self):
        check_array_finite("logits", self.logits)
        if self.logits.ndim != 1 or self.logits.shape[0] < 1:
            raise ValueError(f"`logits` must be 1-D and non-empty, got shape {self.logits.shape}")

    @property
    def num_knots(self) -> int:
        """Number of intervals ``K`` (there are ``K + 1`` knots)."""
        return int(self.logits.shape[0])

    def knot_fractions(self) -> Float[Array, " K+1"]:
        """``f(t_j)``: 0, cumulative increments, exactly 1 at the end."""
        k = self.num_knots
        share = (1.0 - k * _MIN_SHARE) * jax.nn.softmax(self.logits) + _MIN_SHARE
        cum = jnp.concatenate([jnp.zeros((1,), share.dtype), jnp.cumsum(share)])
        return cum / cum[-1]

    def knot_times(self) -> Float[Array, " K+1"]:
        return jnp.linspace(0.0, 1.0, self.num_knots + 1)

    def _interpolate(self, t, fractions):
        raise NotImplementedError

    def logsnr(self, t):
        t = jnp.asarray(t, dtype=self.logits.dtype)
        f = self._interpolate(t, self.knot_fractions())
        return lerp_logsnr(jnp.clip(f, 0.0, 1.0), self.logsnr_max, self.logsnr_min)

    def _shape(self, t):  # unused: logsnr is exact by construction
        return self.logsnr(t)

    @classmethod
    def from_schedule(cls, schedule: AbstractSchedule, num_knots: int = 32):
        """Knots placed on ``schedule``: exact at ``t_j = j / K``, same endpoints.

        >>> from schedopt.schedules import EDM
        >>> s = PiecewiseLinear.from_schedule(EDM(), num_knots=16)
        >>> bool(abs(s.logsnr(0.25) - EDM().logsnr(0.25)) < 1e-3)
        True
        """
        k = check_positive_int("num_knots", num_knots)
        return cls.from_logsnr_values(schedule.logsnr(jnp.linspace(0.0, 1.0, k + 1)))

    @classmethod
    def from_logsnr_values(cls, logsnrs):
        """From logSNR values at the uniform knots ``t_j = j / K`` (strictly decreasing).

        >>> s = PiecewiseLinear.from_logsnr_values(jnp.array([4.0, 1.0, 0.0, -4.0]))
        >>> float(s.logsnr(1 / 3))
        1.0
        """
        lam = np.asarray(logsnrs, dtype=np.float64)
        check_strictly_decreasing("logsnrs", lam)
        k = lam.shape[0] - 1
        frac = (lam[0] - lam) / (lam[0] - lam[-1])
        share = np.maximum(np.diff(frac) - _MIN_SHARE, 1e-12) / (1.0 - k * _MIN_SHARE)
        return cls(
            logits=jnp.asarray(np.log(share), dtype=jnp.result_type(float)),
            sigma_min=float(np.exp(-0.5 * lam[0])),
            sigma_max=float(np.exp(-0.5 * lam[-1])),
        )

    @classmethod
    def uniform(cls, num_knots: int = 32, **endpoints):
        """All increments equal: logSNR linear in ``t``."""
        k = check_positive_int("num_knots", num_knots)
        return cls(logits=jnp.zeros((k,)), **endpoints)


class PiecewiseLinear(AbstractKnotSchedule):
    """logSNR piecewise linear between ``K + 1`` knots at ``t_j = j / K``.

    >>> s = PiecewiseLinear.uniform(8)
    >>> bool(s.logsnr(0.0) == s.logsnr_max) and bool(s.logsnr(1.0) == s.logsnr_min)
    True
    """

    family: ClassVar[str] = "piecewise-linear"

    def _interpolate(self, t, fractions):
        return jnp.interp(t, self.knot_times(), fractions)


class MonotoneCubic(AbstractKnotSchedule):
    """logSNR a monotone cubic (PCHIP) spline through ``K + 1`` knots at ``t_j = j / K``.

    >>> s = MonotoneCubic.uniform(8)
    >>> bool(jnp.all(jnp.diff(s.logsnr(jnp.linspace(0, 1, 101))) < 0))
    True
    """

    family: ClassVar[str] = "monotone-cubic"

    def _interpolate(self, t, fractions):
        return pchip(self.knot_times(), fractions, t)


class MonotoneMLP(AbstractEndpointSchedule):
    """VDM's monotone schedule network with ``softplus``-positive weights.

    ``g(t) = softplus(w1) t + (1/F) sum_j softplus(w3_j) (2 sigmoid(softplus(w2_j) (2t - 1) + b2_j) - 1)``,
    strictly increasing; ``f = (g(t) - g(0)) / (g(1) - g(0))``.

    >>> s = MonotoneMLP.init(jax.random.key(0), num_features=16)
    >>> bool(s.logsnr(1.0) == s.logsnr_min)
    True
    """

    family: ClassVar[str] = "monotone-mlp"
    w1: Array
    w2: Float[Array, " F"]
    b2: Float[Array, " F"]
    w3: Float[Array, " F"]

    def __check_init__(self):
        for name in ("w1", "w2", "b2", "w3"):
            check_array_finite(name, getattr(self, name))

    @classmethod
    def init(cls, key, num_features: int = 64, **endpoints) -> MonotoneMLP:
        """Random initialisation near logSNR-linear (the linear term dominates)."""
        f = check_positive_int("num_features", num_features)
        k2, k3 = jax.random.split(key)
        return cls(
            w1=jnp.asarray(2.0),
            w2=jax.random.normal(k2, (f,)),
            b2=jnp.linspace(-3.0, 3.0, f),
            w3=jax.random.normal(k3, (f,)) - 2.0,
            **endpoints,
        )

    def _g(self, t):
        t = jnp.asarray(t)[..., None]
        hidden = jax.nn.sigmoid(jax.nn.softplus(self.w2) * (2.0 * t - 1.0) + self.b2)
        bumps = jnp.mean(jax.nn.softplus(self.w3) * (2.0 * hidden - 1.0), axis=-1)
        return jax.nn.softplus(self.w1) * t[..., 0] + bumps

    def _shape(self, t):
        return -self._g(t)

    def logsnr(self, t):
        t = jnp.asarray(t, dtype=self.w2.dtype)
        g0, g1 = self._g(jnp.zeros((), t.dtype)), self._g(jnp.ones((), t.dtype))
        f = (self._g(t) - g0) / (g1 - g0)
        return lerp_logsnr(f, self.logsnr_max, self.logsnr_min)

    @classmethod
    def from_schedule(
        cls,
        schedule: AbstractSchedule,
        num_features: int = 64,
        *,
        key=None,
        num_iterations: int = 2000,
        learning_rate: float = 3e-2,
    ) -> MonotoneMLP:
        """Fit the network to ``schedule``'s normalised curve by least squares (Adam).

        >>> from schedopt.schedules import EDM
        >>> s = MonotoneMLP.from_schedule(EDM(), num_iterations=300)
        >>> bool(abs(s.logsnr(0.5) - EDM().logsnr(0.5)) < 1.0)
        True
        """
        key = jax.random.key(0) if key is None else key
        lam_max, lam_min = float(schedule.logsnr_max), float(schedule.logsnr_min)
        endpoints = dict(
            sigma_min=float(np.exp(-0.5 * lam_max)), sigma_max=float(np.exp(-0.5 * lam_min))
        )
        model = cls.init(key, num_features, **endpoints)
        t = jnp.linspace(0.0, 1.0, 257)
        target = (lam_max - schedule.logsnr(t)) / (lam_max - lam_min)

        def loss(m):
            f = (lam_max - m.logsnr(t)) / (lam_max - lam_min)
            return jnp.mean((f - target) ** 2)

        opt = optax.adam(learning_rate)
        state = opt.init(eqx.filter(model, eqx.is_inexact_array))

        @eqx.filter_jit
        def fit(model, state):
            def step(carry, _):
                m, s = carry
                grads = eqx.filter_grad(loss)(m)
                updates, s = opt.update(grads, s)
                return (eqx.apply_updates(m, updates), s), None

            (model, state), _ = jax.lax.scan(step, (model, state), None, length=num_iterations)
            return model

        return fit(model, state)
