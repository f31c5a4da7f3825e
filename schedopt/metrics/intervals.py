"""Confidence intervals over seeds: the mean of per-seed values with a Student-t interval.

Every quality figure schedopt reports is a mean over held-out sampling seeds with its
95% interval ``mean +- t_{0.975, n-1} * std / sqrt(n)`` (``std`` with ``ddof = 1``).
"""

from __future__ import annotations

import math

import numpy as np

#: Two-sided 95% Student-t quantiles ``t_{0.975, df}`` for df = 1..30 (beyond: interpolated
#: in 1/df towards the normal quantile 1.95996).
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
_Z975 = 1.959964


def t_quantile_975(df: int) -> float:
    """``t_{0.975, df}``, the two-sided 95% Student-t quantile.

    >>> round(t_quantile_975(2), 3), round(t_quantile_975(1000), 3)
    (4.303, 1.962)
    """
    if int(df) != df or df < 1:
        raise ValueError(f"`df` must be an integer >= 1, got df={df!r}")
    df = int(df)
    if df <= len(_T975):
        return _T975[df - 1]
    last = len(_T975)  # linear in 1/df between df = 30 and infinity
    return _Z975 + (_T975[-1] - _Z975) * last / df


def mean_interval(values) -> dict:
    """``{"mean", "ci95", "n", "values"}``: the mean of ``values`` and the half-width of its
    95% t-interval (``None`` for a single value).

    >>> r = mean_interval([1.0, 2.0, 3.0])
    >>> r["mean"], round(r["ci95"], 3), r["n"]
    (2.0, 2.484, 3)
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"`values` must be finite and non-empty, got {v.tolist()!r:.200}")
    half = None
    if v.size > 1:
        half = float(t_quantile_975(v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return {"mean": float(v.mean()), "ci95": half, "n": int(v.size), "values": v.tolist()}
