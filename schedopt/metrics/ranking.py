"""Rank agreement between two scores of the same strategies (the claim of Sun, Poor & Zhang:
does a proxy such as the Gaussian KL rank schedules as a sample metric does?)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def average_ranks(values: ArrayLike) -> np.ndarray:
    """Ranks ``1..n`` (smallest first), tied values sharing their average rank; ``inf``
    values tie with each other, so diverged runs rank last together.

    >>> average_ranks([2.0, 1.0, 2.0, float("inf")]).tolist()
    [2.5, 1.0, 2.5, 4.0]
    """
    a = np.asarray(values, np.float64)
    if a.ndim != 1 or np.isnan(a).any():
        raise ValueError(f"`values` must be a 1-D sequence without NaN, got {a.tolist()}")
    ranks = np.empty(a.shape[0])
    ranks[np.argsort(a, kind="stable")] = np.arange(1, a.shape[0] + 1)
    for v in np.unique(a):
        ranks[a == v] = ranks[a == v].mean()
    return ranks


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rank correlation: the Pearson correlation of :func:`average_ranks`.
    NaN when either side is constant (no ranking to agree with).

    >>> spearman([1, 2, 3], [30, 20, 10])
    -1.0
    """
    ra, rb = average_ranks(a), average_ranks(b)
    if ra.shape != rb.shape:
        raise ValueError(f"`a` and `b` must have the same length, got {ra.shape} and {rb.shape}")
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])
