"""AYS-style schedule optimisation: minimise a KL upper bound between the true reverse SDE
and its discretisation (Align Your Steps; only its sigma lists were released, so the
bound and optimiser here are schedopt's own, derived for Gaussian data).

The bound. The reverse VE SDE in noise level ``s`` is ``dy = -2 s score(y, s) ds + sqrt(2 s) dW``;
the discretised process freezes the score at each step's start ``s_k`` on ``[s_{k+1}, s_k]``.
Girsanov and data processing give ``KL(true output || discretised output) <=
sum_k int_{s_{k+1}}^{s_k} s E||score(y_s, s) - score(y_{s_k}, s_k)||^2 ds`` with ``y`` on one
true path. For Gaussian data ``E||.||^2 = sum_d 1/(c_d + s^2) - 1/(c_d + s_k^2)`` **[derived]**, so
each interval costs ``sum_d w_d (log(A/B) - (A - B)/A) / 2`` with ``A = c + s_k^2``,
``B = c + s_{k+1}^2``, in closed form and additive over steps. For one eigenvalue its
optimum makes ``c + s_k^2`` geometric between the fixed ends **[derived]** (AM-GM), the
known case the tests check.

With the range free (``bounds``), the ends move too and the bound gains the initial
distributions' KL (data processing: ``KL(p_T || q_T)`` at the start level ``s_hi``, for VE
noise ``N(0, s_hi^2)``); the last interval ``s_lo -> 0`` is in the sum already.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_float, check_positive_int
from ..gaussian.spectrum import Spectrum
from .costs import ays_interval_bound, initial_mismatch
from .descent import best_descent
from .dp import SearchResult


def ays_bound(spectrum: Spectrum, sigmas) -> jax.Array:
    """The KL upper bound of a grid ``s_0 > ... > s_N >= 0``: sum of interval bounds.

    >>> round(float(ays_bound(Spectrum([1.0]), jnp.array([1.0, 0.0]))), 4)
    0.0966
    """
    sigmas = jnp.asarray(sigmas, dtype=jnp.result_type(float))
    return jnp.sum(ays_interval_bound(spectrum, sigmas[:-1], sigmas[1:]))


def _levels(logits, log_max, log_min):
    fractions = jnp.cumsum(jax.nn.softmax(logits))[:-1]
    interior = log_max + fractions * (log_min - log_max)
    return jnp.exp(jnp.concatenate([jnp.array([log_max]), interior, jnp.array([log_min])]))


def _range_levels(logits, log_hi, log_lo):
    """All ``n`` levels from ``n + 1`` gap logits partitioning ``[log_lo, log_hi]``."""
    fractions = jnp.cumsum(jax.nn.softmax(logits))[:-1]
    return jnp.exp(log_hi + fractions * (log_lo - log_hi))


def _ays_loss(z, args):
    spectrum, log_max, log_min, free_range = args
    if free_range:
        levels = _range_levels(z, log_max, log_min)
        start = initial_mismatch(spectrum, levels[0])
    else:
        levels, start = _levels(z, log_max, log_min), 0.0
    return start + ays_bound(spectrum, jnp.concatenate([levels, jnp.zeros((1,))]))


def optimize_ays(
    spectrum: Spectrum,
    num_steps: int,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    num_iterations: int = 500,
    learning_rate: float = 0.05,
    rho: float = 7.0,
    bounds: tuple[float, float] | None = None,
) -> SearchResult:
    """Minimise :func:`ays_bound` over the ``num_steps`` positive levels of a ``final="zero"``
    grid (ends ``sigma_max`` and ``sigma_min`` fixed, then 0), by Adam on softmax
    log-sigma decrements, started from EDM's ``rho`` grid. Returns the best grid seen.

    With ``bounds = (lo, hi)`` the ends are free inside them too (started at ``sigma_min``,
    ``sigma_max``), and the VE start's KL joins the bound (the module docstring); its
    ``cost`` is then that sum.

    >>> r = optimize_ays(Spectrum([1.0]), 4, num_iterations=50)
    >>> r.sigmas.shape, bool(r.sigmas[0] == 80.0)
    ((5,), True)
    >>> one = Spectrum([1.0])
    >>> free = optimize_ays(one, 4, num_iterations=200, bounds=(0.002, 80.0))
    >>> bool(free.cost < ays_bound(one, r.sigmas) + initial_mismatch(one, 80.0))
    True
    """
    n = check_positive_int("num_steps", num_steps)
    check_positive_float("sigma_min", sigma_min)
    check_positive_float("sigma_max", sigma_max)
    if not sigma_min < sigma_max:
        raise ValueError(f"need sigma_min < sigma_max, got {sigma_min=}, {sigma_max=}")
    num_iterations = check_positive_int("num_iterations", num_iterations)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    ramp = np.linspace(0.0, 1.0, n)
    edm = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        if not (0 < lo <= sigma_min < sigma_max <= hi):
            raise ValueError(
                f"`bounds` must hold [sigma_min, sigma_max], got {bounds=}, {sigma_min=}, "
                f"{sigma_max=}"
            )
        log_levels = np.log(np.concatenate([[hi], edm, [lo]]))
        gaps = np.maximum(-np.diff(log_levels), 1e-3 * np.log(hi / lo))
        args = (spectrum, float(np.log(hi)), float(np.log(lo)), True)
        z = best_descent(_ays_loss, jnp.asarray(np.log(gaps)), args, learning_rate, num_iterations)
        levels = np.asarray(_range_levels(z, np.log(hi), np.log(lo)))
        sigmas = np.concatenate([levels, [0.0]])
        cost = float(ays_bound(spectrum, sigmas) + initial_mismatch(spectrum, levels[0]))
        return SearchResult(sigmas, None, cost)
    if n <= 2:  # nothing free: the levels are the two ends (or sigma_max alone)
        levels = [sigma_max, sigma_min][:n]
        sigmas = np.asarray([*levels, 0.0])
        return SearchResult(sigmas, None, float(ays_bound(spectrum, sigmas)))
    log_max, log_min = float(np.log(sigma_max)), float(np.log(sigma_min))
    logits = jnp.asarray(np.log(-np.diff(np.log(edm))))
    args = (spectrum, log_max, log_min, False)
    z = best_descent(_ays_loss, logits, args, learning_rate, num_iterations)
    sigmas = np.concatenate([np.asarray(_levels(z, log_max, log_min)), [0.0]])
    sigmas[0], sigmas[n - 1] = sigma_max, sigma_min
    return SearchResult(sigmas, None, float(ays_bound(spectrum, sigmas)))


def ays_single_eigenvalue_optimum(c: float, num_steps: int, sigma_min: float, sigma_max: float):
    """The exact optimum of :func:`ays_bound` for one eigenvalue ``c``: ``c + s_k^2`` geometric
    from ``c + sigma_max^2`` to ``c + sigma_min^2`` over the positive levels, then 0.

    >>> ays_single_eigenvalue_optimum(1.0, 3, 0.0, 3.0).round(3).tolist()
    [3.0, 1.47, 0.0, 0.0]
    """
    n = check_positive_int("num_steps", num_steps)
    x = np.geomspace(c + sigma_max**2, c + sigma_min**2, n)
    return np.concatenate([np.sqrt(np.maximum(x - c, 0.0)), [0.0]])
