"""Learnable schedule families: monotone and endpoint-exact for every parameter value.

Each writes ``lam(t) = lam_max - f(t) (lam_max - lam_min)`` with ``f: [0, 1] -> [0, 1]``
strictly increasing, ``f(0) = 0``, ``f(1) = 1`` by construction:

- ``PiecewiseLinear``: knots at ``t_j = j / K``, increments ``softmax(logits)`` (LD3-style).
- ``MonotoneCubic``: the same knots joined by a monotone cubic (PCHIP) interpolant.
- ``MonotoneMLP``: VDM's monotone network: a softmax mixture of the identity and sigmoid
  bumps, with a fixed 1% share of the identity so that it cannot saturate to a constant.

``from_schedule`` initialises each to approximate any schedule (VDM: a learned schedule
starts as a known one). Endpoints are static and never trained.

In floating point (float32 and float64) every family is finite, inside
``[lam_min, lam_max]`` and non-increasing for every parameter value and every grid: each
operation from ``t`` to ``lam`` is non-decreasing or non-increasing under rounding (the
knot families' values are also clipped to the knot interval they fall in), so rounding
can flatten a step but never reverse it. ``MonotoneMLP`` is moreover strictly decreasing
on every grid with spacing above about ``1e-4`` (in float32), since its slope
``df/du >= 0.01``; the knot families are strictly decreasing where a step moves ``f``
by more than rounding (a knot interval holds at least a ``1e-6`` share of the range).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import (
    check_array_finite,
    check_choice,
    check_positive_int,
    check_strictly_decreasing,
)
from .._compile import fast_jit
from .._interp import clip_through, pchip_slopes
from .base import AbstractEndpointSchedule, AbstractSchedule, pin_ends

# Every increment keeps at least this share of the total, so ``f`` stays strictly
# increasing even when softmax underflows.
_MIN_SHARE = 1e-6
# MonotoneMLP: share of the identity in ``f``, a floor on its slope ``df/du``.
_MLP_IDENTITY_SHARE = 1e-2


def monotone_logsnr(t: Array, fraction: Array, logsnr_max, logsnr_min) -> Array:
    """``lam = lam_max - f (lam_max - lam_min)`` for ``f`` clipped to ``[0, 1]``: exact at
    ``t = 0`` and ``t = 1``, inside ``[lam_min, lam_max]``, and non-increasing in ``f``
    under rounding (unlike ``(1 - f) lam_max + f lam_min`` when both ends share a sign).

    >>> float(monotone_logsnr(jnp.array(0.5), jnp.array(0.25), 4.0, -4.0))
    2.0
    """
    raw = logsnr_max - fraction * (logsnr_max - logsnr_min)
    lam = clip_through(raw, logsnr_min, logsnr_max)
    lam = jnp.where(fraction >= 1.0, jnp.asarray(logsnr_min, lam.dtype), lam)
    return pin_ends(t, lam, logsnr_max, logsnr_min, slope_of=raw)


class AbstractKnotSchedule(AbstractEndpointSchedule):
    """Base of the knot families: ``f`` at ``t_j = j / K`` is the cumulative softmax share."""

    logits: Float[Array, " K"]
    knots: tuple[float, ...] | None = eqx.field(static=True, default=None, kw_only=True)
    """Knot times ``0 = t_0 < ... < t_K = 1`` (static); ``None`` means ``t_j = j / K``."""

    def __check_init__(self):
        check_array_finite("logits", self.logits)
        if self.logits.ndim != 1 or self.logits.shape[0] < 1:
            raise ValueError(f"`logits` must be 1-D and non-empty, got shape {self.logits.shape}")
        if self.knots is not None:
            knots = np.asarray(self.knots, dtype=np.float64)
            ok = (
                knots.shape == (self.logits.shape[0] + 1,)
                and knots[0] == 0.0
                and knots[-1] == 1.0
                and np.all(np.diff(knots) > 0)
            )
            if not ok:
                raise ValueError(
                    f"`knots` must be {self.logits.shape[0] + 1} strictly increasing times "
                    f"from 0 to 1, got knots={self.knots!r:.200}"
                )

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
        """The knot times ``t_j`` (uniform unless ``knots`` was given)."""
        if self.knots is None:
            return jnp.linspace(0.0, 1.0, self.num_knots + 1)
        return jnp.asarray(self.knots, dtype=self.logits.dtype)

    @abc.abstractmethod
    def _interpolate(self, t, fractions):
        """The cumulative fraction of the logSNR drop at ``t``, from the knots' fractions."""

    def logsnr(self, t):
        t = jnp.asarray(t, dtype=self.logits.dtype)
        fractions = self.knot_fractions()
        times = self.knot_times()
        # Clipped to the knot interval it falls in: rounding in the interpolant cannot
        # then carry a value past a knot, so f is non-decreasing across knots.
        i = jnp.clip(jnp.searchsorted(times, t, side="right") - 1, 0, self.num_knots - 1)
        f = clip_through(self._interpolate(t, fractions), fractions[i], fractions[i + 1])
        return monotone_logsnr(t, f, self.logsnr_max, self.logsnr_min)

    @classmethod
    def from_schedule(
        cls, schedule: AbstractSchedule, num_knots: int = 32, placement: str = "adaptive"
    ):
        """Knots placed on ``schedule``: exact at the knots, same endpoints.

        ``placement="uniform"``: ``t_j = j / K``. ``"adaptive"`` (default): the union of
        ``K/2`` intervals uniform in ``t`` and ``K/2`` uniform in logSNR, so that steep
        ends (cosine's logarithmic ends) get knots too.

        >>> from schedopt.schedules import EDM
        >>> s = PiecewiseLinear.from_schedule(EDM(), num_knots=16)
        >>> bool(abs(s.logsnr(0.25) - EDM().logsnr(0.25)) < 1e-2)
        True
        """
        k = check_positive_int("num_knots", num_knots)
        check_choice("placement", placement, ("adaptive", "uniform"))
        knots = _adaptive_knots(schedule, k) if placement == "adaptive" else None
        t = np.linspace(0.0, 1.0, k + 1) if knots is None else np.asarray(knots)
        return cls.from_logsnr_values(_logsnr_at(schedule, jnp.asarray(t)), knots=knots)

    @classmethod
    def from_logsnr_values(cls, logsnrs, knots: tuple[float, ...] | None = None):
        """From logSNR values at the knot times (uniform ``t_j = j / K`` by default).

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
            knots=knots,
        )

    @classmethod
    def uniform(cls, num_knots: int = 32, **endpoints):
        """All increments equal: logSNR linear in ``t``."""
        k = check_positive_int("num_knots", num_knots)
        return cls(logits=jnp.zeros((k,)), **endpoints)


# One-off evaluations of a schedule, each compiled as one program, quickly (op by op,
# every primitive would be compiled on its own).
@fast_jit
def _logsnr_at(schedule: AbstractSchedule, t: Array) -> Array:
    return schedule.logsnr(t)


@fast_jit
def _t_of_logsnr_at(schedule: AbstractSchedule, logsnr: Array) -> Array:
    return schedule.t_of_logsnr(logsnr)


def _adaptive_knots(schedule: AbstractSchedule, k: int) -> tuple[float, ...] | None:
    """``k + 1`` knot times: the union of ``k - k//2`` intervals uniform in ``t`` and
    ``k//2`` uniform in logSNR; where the two sets share times, the widest gaps are split
    until there are ``k + 1``. ``None`` (uniform) for ``k < 2``."""
    half = k // 2
    if half < 1:
        return None
    by_t = np.linspace(0.0, 1.0, k - half + 1)
    lam_max, lam_min = float(schedule.logsnr_max), float(schedule.logsnr_min)
    even_lam = lam_max + np.linspace(0.0, 1.0, half + 1) * (lam_min - lam_max)
    by_lam = np.asarray(_t_of_logsnr_at(schedule, jnp.asarray(even_lam[1:-1])), dtype=np.float64)
    times = np.unique(np.concatenate([by_t, np.clip(by_lam, 0.0, 1.0)]))
    times = times[np.concatenate([[True], np.diff(times) > 1e-6])]
    times[-1] = 1.0
    while times.shape[0] < k + 1:
        i = int(np.argmax(np.diff(times)))
        times = np.insert(times, i + 1, 0.5 * (times[i] + times[i + 1]))
    return tuple(float(x) for x in times[: k + 1]) if times.shape[0] == k + 1 else None


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
        # PCHIP (the slopes of ``_interp.pchip_slopes``), evaluated from the nearer knot of
        # each interval: ``f_j + d_j H(s)`` on the lower half, ``f_{j+1} - d_j H'(1 - s)``
        # on the upper half, so that rounding errors shrink with the distance to the knot
        # instead of being ``ulp(1)`` near an interval's upper end (where the summed
        # Hermite basis of ``_interp.pchip`` reverses by a few ulp in float32).
        x = self.knot_times()
        slopes = pchip_slopes(x, fractions)
        i = jnp.clip(jnp.searchsorted(x, t, side="right") - 1, 0, self.num_knots - 1)
        h = x[i + 1] - x[i]
        d = fractions[i + 1] - fractions[i]
        a, b = slopes[i] * h / d, slopes[i + 1] * h / d
        s = clip_through((t - x[i]) / h, 0.0, 1.0)
        lower = fractions[i] + d * _hermite_shape(s, a, b)
        upper = fractions[i + 1] - d * _hermite_shape(1.0 - s, b, a)
        return jnp.where(s <= 0.5, lower, upper)


def _hermite_shape(r, slope0, slope1):
    """The cubic from 0 to 1 on ``[0, 1]`` with end slopes ``slope0``, ``slope1``, in a
    form accurate relative to its value near ``r = 0``."""
    return r * r * (3.0 - 2.0 * r) + r * (1.0 - r) * (slope0 * (1.0 - r) - slope1 * r)


class MonotoneMLP(AbstractEndpointSchedule):
    """VDM's monotone schedule network: a mixture of the identity and sigmoid bumps.

    ``f(u) = (e u + (1 - e) G(u)) / (e + (1 - e) G(1))`` with ``e = 0.01`` and
    ``G(u) = q_0 u + sum_j q_j (sigmoid(k_j (2u - 1) + b2_j) - sigmoid(b2_j - k_j))``,
    ``q = softmax([w1, w3])``, ``k = softplus(w2)``: ``G`` is non-decreasing with
    ``G(0) = 0`` and ``G(1) <= 1``, so ``f`` is finite with ``f(0) = 0``, ``f(1) = 1`` and
    slope ``df/du >= e`` for every parameter value (no saturation to a constant). The
    input is ``u = t``, or with a ``base`` schedule its normalised curve
    ``u = (lam_max - lam_base(t)) / (lam_max - lam_min)``: the network then warps a known
    schedule, and starts as it (VDM: a learned schedule starts as a known one). The base
    is frozen (``stop_gradient``).

    >>> s = MonotoneMLP.init(jax.random.key(0), num_features=16)
    >>> bool(s.logsnr(1.0) == s.logsnr_min)
    True
    """

    family: ClassVar[str] = "monotone-mlp"
    w1: Array
    w2: Float[Array, " F"]
    b2: Float[Array, " F"]
    w3: Float[Array, " F"]
    base: AbstractSchedule | None = eqx.field(default=None, kw_only=True)

    def __check_init__(self):
        for name in ("w1", "w2", "b2", "w3"):
            check_array_finite(name, getattr(self, name))
        if jnp.ndim(self.w1) != 0:
            raise ValueError(f"`w1` must be a scalar, got shape {jnp.shape(self.w1)}")
        shapes = {name: jnp.shape(getattr(self, name)) for name in ("w2", "b2", "w3")}
        if len(set(shapes.values())) != 1 or len(shapes["w2"]) != 1 or shapes["w2"][0] < 1:
            raise ValueError(f"`w2`, `b2` and `w3` must be 1-D of one length >= 1, got {shapes}")

    @classmethod
    def init(
        cls, key, num_features: int = 64, *, base: AbstractSchedule | None = None, **endpoints
    ) -> MonotoneMLP:
        """Random initialisation near the identity warp (the identity's weight ~0.8)."""
        f = check_positive_int("num_features", num_features)
        if base is not None:
            endpoints = dict(sigma_min=float(base.sigma_min), sigma_max=float(base.sigma_max))
        k2, k3 = jax.random.split(key)
        return cls(
            w1=jnp.asarray(2.0),
            w2=jax.random.normal(k2, (f,)),
            b2=jnp.linspace(-3.0, 3.0, f),
            w3=jax.random.normal(k3, (f,)) - 4.0,
            base=base,
            **endpoints,
        )

    def _input(self, t):
        if self.base is None:
            return t
        base = jax.lax.stop_gradient(self.base)
        lam_max, lam_min = base.logsnr_max, base.logsnr_min
        return jnp.clip((lam_max - base.logsnr(t)) / (lam_max - lam_min), 0.0, 1.0)

    def _g(self, u):
        """``G(u)``: the softmax mixture of the identity and the bumps, in ``[0, 1]``."""
        u = jnp.asarray(u)[..., None]
        q = jax.nn.softmax(jnp.concatenate([jnp.reshape(self.w1, (1,)), self.w3]))
        k = jax.nn.softplus(self.w2)
        bumps = jax.nn.sigmoid(k * (2.0 * u - 1.0) + self.b2) - jax.nn.sigmoid(self.b2 - k)
        return q[0] * u[..., 0] + jnp.sum(q[1:] * bumps, axis=-1)

    def _fraction(self, u):
        e = _MLP_IDENTITY_SHARE
        g1 = self._g(jnp.ones((), u.dtype))
        return (e * u + (1.0 - e) * self._g(u)) / (e + (1.0 - e) * g1)

    def logsnr(self, t):
        t = jnp.asarray(t, dtype=self.w2.dtype)
        f = self._fraction(self._input(t))
        return monotone_logsnr(t, f, self.logsnr_max, self.logsnr_min)

    @classmethod
    def from_schedule(
        cls, schedule: AbstractSchedule, num_features: int = 64, *, key=None
    ) -> MonotoneMLP:
        """A network that warps ``schedule`` and starts as it: the bump weights start at
        ``q_j ~ e^-12 ~ 6e-6`` of the identity's, so ``f`` is the identity to about ``1e-4``.

        >>> from schedopt.schedules import EDM
        >>> s = MonotoneMLP.from_schedule(EDM())
        >>> bool(abs(s.logsnr(0.5) - EDM().logsnr(0.5)) < 1e-2)
        True
        """
        key = jax.random.key(0) if key is None else key
        model = cls.init(key, num_features, base=schedule)
        return eqx.tree_at(
            lambda m: (m.w1, m.w3),
            model,
            (jnp.zeros_like(model.w1), jnp.full_like(model.w3, -12.0)),
        )
