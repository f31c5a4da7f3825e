"""A sampling discretisation whose noise range is learned with its spacing: ``RangedSchedule``.

A *training* schedule keeps its exact endpoints (they define the training noise
distribution); a *sampling* grid may start below the largest level a model knows and stop
before the smallest (the "trailing" grids of diffusers and EDM's rho = 7 on a narrower
range win at 10 NFE or fewer). ``RangedSchedule`` keeps the two apart: it takes the
*shape* of any schedule, its logSNR fraction
``f(t) = (lam_b(t) - lam_b(0)) / (lam_b(1) - lam_b(0))`` (0 at the clean end, 1 at the
noisy end, strictly increasing), and lays it onto a learnable range ``[s_lo, s_hi]``:

    lam(t) = (1 - f(t)) lam(s_lo) + f(t) lam(s_hi),     lam(s) = -2 log s.

The range lives in ``bounds = (b_lo, b_hi)``, the levels the model is valid on (for a
tabulated discrete model its table's range, e.g. Stable Diffusion's [0.0292, 14.61]).
With ``L = log(b_hi / b_lo)``, the three gaps ``(log s_lo - log b_lo, log s_hi - log s_lo,
log b_hi - log s_hi) = L (m + (1 - 3 m) softmax(gain * range_logits))``, ``m = 1e-4``, are
positive for every parameter value (softmax may underflow; ``m`` may not), so
``b_lo < s_lo < s_hi < b_hi`` and the grid is strictly decreasing and inside the bounds
whatever the optimiser does. ``gain`` (static) scales the logits: Adam moves each
logit by about its learning rate per step, so a gain above 1 lets the range travel the
few log-units it may need within a short fit while the shape keeps its rate.

It is a schedule like any other (an :class:`~schedopt.schedules.AbstractSchedule`), so
every sampler, objective and exporter takes it unchanged; its ``base`` may be learnable
too (spacing and range learned together) or fixed (``freeze_base``: the range alone), and
the range may be held fixed (``freeze_range``: the spacing alone on a range found by
another fit; the constant-rate and score-work costs are zero on any range with equal steps,
so they cannot choose one themselves).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import check_positive_float
from .base import AbstractSchedule, lerp_logsnr, pin_ends

#: The smallest share of the bounds' log-range a gap starts with, so that a range equal to
#: the bounds is representable (softmax shares are never exactly 0).
MIN_GAP_SHARE = 1e-3

#: Every gap keeps at least this share whatever the logits (softmax underflows otherwise):
#: the range never collapses and the grid stays strictly decreasing in float32.
_MIN_SHARE = 1e-4


def _check_bounds(bounds) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(
            f"`bounds` must be two noise levels (lo, hi), got bounds={bounds!r}"
        ) from None
    check_positive_float("bounds[0]", lo)
    if not (np.isfinite(hi) and lo < hi):
        raise ValueError(f"`bounds` must satisfy 0 < lo < hi < inf, got bounds={bounds!r}")
    return lo, hi


class RangedSchedule(AbstractSchedule):
    """``base``'s shape on the learnable noise range ``[s_lo, s_hi]`` inside ``bounds``.

    >>> from schedopt.schedules import EDM
    >>> s = RangedSchedule.from_schedule(EDM(), bounds=(0.002, 200.0), sigma_range=(0.5, 120.0))
    >>> [round(float(v), 3) for v in (s.sigma_min, s.sigma_max)]
    [0.5, 120.0]
    >>> bool(abs(s.fraction(0.3) - RangedSchedule.from_schedule(EDM()).fraction(0.3)) < 1e-5)
    True
    """

    family: ClassVar[str] = "ranged"

    base: AbstractSchedule
    range_logits: Float[Array, " 3"]
    bounds: tuple[float, float] = eqx.field(static=True, converter=_check_bounds)
    gain: float = eqx.field(static=True, default=4.0, converter=float)
    freeze_base: bool = eqx.field(static=True, default=False, converter=bool)
    freeze_range: bool = eqx.field(static=True, default=False, converter=bool)

    def __check_init__(self):
        if not isinstance(self.base, AbstractSchedule):
            raise ValueError(f"`base` must be an AbstractSchedule, got {type(self.base).__name__}")
        if jnp.shape(self.range_logits) != (3,):
            raise ValueError(
                f"`range_logits` must have shape (3,), got {jnp.shape(self.range_logits)}"
            )
        check_positive_float("gain", self.gain)

    @classmethod
    def from_schedule(
        cls,
        base: AbstractSchedule,
        bounds: tuple[float, float] = (0.002, 80.0),
        sigma_range: tuple[float, float] | None = None,
        *,
        gain: float = 4.0,
        freeze_base: bool = False,
        freeze_range: bool = False,
    ) -> RangedSchedule:
        """Start from ``base`` on ``sigma_range`` (default: base's own range), clipped into
        ``bounds``; an end closer to its bound than :data:`MIN_GAP_SHARE` of the bounds'
        log-range starts that far inside (the other end stays where it was).

        >>> from schedopt.schedules import EDM
        >>> s = RangedSchedule.from_schedule(EDM())
        >>> round(float(s.sigma_min), 5), round(float(s.sigma_max), 2)
        (0.00202, 79.16)
        """
        lo, hi = _check_bounds(bounds)
        if sigma_range is None:
            sigma_range = (float(base.sigma_min), float(base.sigma_max))
        s_lo, s_hi = (float(v) for v in sigma_range)
        if not (0 < s_lo < s_hi):
            raise ValueError(f"`sigma_range` must satisfy 0 < lo < hi, got {sigma_range!r}")
        total = np.log(hi / lo)
        s_lo, s_hi = min(max(s_lo, lo), hi), max(min(s_hi, hi), lo)
        outer = np.maximum([np.log(s_lo / lo), np.log(hi / s_hi)], MIN_GAP_SHARE * total)
        middle = max(total - outer.sum(), MIN_GAP_SHARE * total)  # outer gaps taken from it
        gaps = np.array([outer[0], middle, outer[1]])
        shares = (gaps / gaps.sum() - _MIN_SHARE) / (1.0 - 3 * _MIN_SHARE)
        logits = np.log(shares) / gain
        dtype = jnp.result_type(float)
        return cls(base, jnp.asarray(logits, dtype), (lo, hi), gain, freeze_base, freeze_range)

    def log_range(self) -> tuple[Array, Array]:
        """``(log s_lo, log s_hi)``."""
        lo, hi = self.bounds
        logits = (
            jax.lax.stop_gradient(self.range_logits) if self.freeze_range else self.range_logits
        )
        shares = (1.0 - 3 * _MIN_SHARE) * jax.nn.softmax(self.gain * logits)
        shares = shares + _MIN_SHARE
        total = np.log(hi / lo)
        return np.log(lo) + total * shares[0], np.log(lo) + total * (shares[0] + shares[1])

    @property
    def logsnr_max(self) -> Array:
        return -2.0 * self.log_range()[0]

    @property
    def logsnr_min(self) -> Array:
        return -2.0 * self.log_range()[1]

    def fraction(self, t) -> Array:
        """``f(t)``: the base schedule's logSNR fraction, 0 at ``t = 0`` and 1 at ``t = 1``."""
        base = jax.lax.stop_gradient(self.base) if self.freeze_base else self.base
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        top, bottom = base.logsnr(jnp.zeros((), t.dtype)), base.logsnr(jnp.ones((), t.dtype))
        return pin_ends(t, (base.logsnr(t) - top) / (bottom - top))

    def logsnr(self, t):
        log_lo, log_hi = self.log_range()
        return lerp_logsnr(self.fraction(t), -2.0 * log_lo, -2.0 * log_hi)
