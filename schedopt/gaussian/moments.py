"""Output distribution and KL of a sampler on Gaussian data, per eigen-direction.

Chaining the affine steps of :mod:`schedopt.gaussian.solvers` from an initial
``y_0 ~ N(m_0, v_0)`` gives the output ``N(mu + delta_N, w_N (c + s_N^2))``: the mean
offset obeys ``delta' = a delta + b mu`` and the variance relative to the exact marginal,
``w = v / (c + s^2)``, obeys ``w' = r w + q / (c + s'^2)``. Both are chained with
multiply-adds (:mod:`schedopt.gaussian.chain`), in chunks of the spectrum, so spectra of
10^6 eigenvalues and their gradients take a few passes over memory.

Initialisations: ``"exact"`` (``y_0`` from the true marginal, ``w_0 = 1``), ``"ve"``
(``N(0, s_0^2)``) and ``"vp"`` (``x_T ~ N(0, I)``, i.e. ``y_0 ~ N(0, 1 + s_0^2)``).
KL directions: ``"forward"`` is ``KL(data || output)``, ``"reverse"`` is
``KL(output || data)``; "data" is the exact marginal at the last noise level ``s_N``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import check_choice
from .chain import Start, chunked_concat, chunked_sum
from .registry import solver_from_name
from .solvers import AbstractGaussianSolver, StepGrid
from .spectrum import Spectrum

INITS = ("exact", "ve", "vp")
DIRECTIONS = ("forward", "reverse")


class OutputMoments(NamedTuple):
    """Per eigen-direction: output mean offset ``delta = mean - mu``, log of the output
    variance over the target variance ``c + s_N^2``, and that target variance."""

    mean_offset: Float[Array, " d"]
    log_variance_ratio: Float[Array, " d"]
    target_variance: Float[Array, " d"]

    @property
    def mean(self) -> Array:
        raise AttributeError("use `mean_offset` plus the spectrum's mean")

    def variance(self) -> Array:
        """The output variance ``exp(log ratio) (c + s_N^2)``."""
        return jnp.exp(self.log_variance_ratio) * self.target_variance


def _start(spectrum_c, mean, s0, init):
    """:class:`Start` of ``init`` without cancellation: ``exact``: ``w = 1``; ``ve``:
    ``w = s_0^2 / (c + s_0^2)``, ``u = c / (c + s_0^2)``; ``vp``:
    ``w = (1 + s_0^2) / (c + s_0^2)``, ``u = (c - 1) / (c + s_0^2)``."""
    c = spectrum_c
    if init == "exact":
        return Start(jnp.ones_like(c), jnp.zeros_like(c))
    span = c + s0**2
    if init == "ve":
        return Start(s0**2 / span, c / span, -mean)
    return Start((1.0 + s0**2) / span, (c - 1.0) / span, -mean)


def _moments(c, mean, grid, solver, init):
    return solver.chain(c, mean, grid, _start(c, mean, grid.sigmas[0], init))


def output_moments(
    spectrum: Spectrum,
    grid: StepGrid,
    solver: AbstractGaussianSolver | str = "euler",
    init: str = "exact",
) -> OutputMoments:
    """Exact output mean and variance of ``solver`` on ``grid`` for Gaussian data.

    >>> from schedopt.gaussian.solvers import sigma_grid
    >>> m = output_moments(Spectrum([1.0]), sigma_grid([2.0, 0.0]))
    >>> round(float(m.variance()[0]), 4)  # (c/(c+s^2))^2 (c+s^2) = c^2/(c+s^2)
    0.2
    """
    solver = solver_from_name(solver)
    check_choice("init", init, INITS)
    c = spectrum.eigenvalues
    log_w, delta = chunked_concat(
        lambda ci, mi: _moments(ci, mi, grid, solver, init), (c, spectrum.mean), (1.0, 0.0)
    )
    return OutputMoments(delta, log_w, c + grid.sigmas[-1] ** 2)


def expm1_minus_identity(x: Array) -> Array:
    """``expm1(x) - x = x^2/2 + x^3/6 + ...``, by its series where it would cancel.

    >>> x = jnp.float32(1e-4)
    >>> round(float(expm1_minus_identity(x)) * 1e9, 6), round(float(jnp.expm1(x) - x) * 1e9, 6)
    (5.000167, 5.005859)
    """
    x = jnp.asarray(x)
    small = jnp.abs(x) < (0.5 if x.dtype == jnp.float32 else 0.1)
    z = jnp.where(small, x, 0.0)
    series = jnp.zeros_like(z)
    for k in range(12, 1, -1):  # Horner: sum_k z^k / k!, k = 2..12
        series = (series + 1.0 / math.factorial(k)) * z
    series = series * z
    return jnp.where(small, series, jnp.expm1(x) - x)


def kl_per_direction(moments: OutputMoments, direction: str = "forward") -> Array:
    """Gaussian KL per eigen-direction, computed from the log variance ratio ``l``.

    forward ``KL(data || output) = (expm1(-l) + l + delta^2 e^{-l} / v) / 2``;
    reverse ``KL(output || data) = (expm1(l) - l + delta^2 / v) / 2``; ``expm1(x) - x`` by
    its series near 0 (:func:`expm1_minus_identity`), where it would cancel.

    >>> from schedopt.gaussian.solvers import sigma_grid
    >>> m = output_moments(Spectrum([1.0]), sigma_grid([2.0, 0.0]))
    >>> round(float(kl_per_direction(m, "reverse")[0]), 6)  # (r - 1 - log r) / 2, r = 0.2
    0.404719
    """
    check_choice("direction", direction, DIRECTIONS)
    log_ratio = moments.log_variance_ratio
    mean_term = moments.mean_offset**2 / moments.target_variance
    if direction == "forward":
        return 0.5 * (expm1_minus_identity(-log_ratio) + mean_term * jnp.exp(-log_ratio))
    return 0.5 * (expm1_minus_identity(log_ratio) + mean_term)


def gaussian_kl(
    spectrum: Spectrum,
    grid: StepGrid,
    solver: AbstractGaussianSolver | str = "euler",
    init: str = "exact",
    direction: str = "forward",
) -> Array:
    """Total KL (weighted sum over eigen-directions) between data and sampler output.

    Evaluated in chunks of the spectrum, each summed where it is computed.

    >>> from schedopt.schedules import EDM
    >>> from schedopt.gaussian.solvers import step_grid
    >>> kl = gaussian_kl(Spectrum([0.5, 1.0, 2.0]), step_grid(EDM(), 10))
    >>> 0 < float(kl) < 1
    True
    """
    solver = solver_from_name(solver)
    check_choice("init", init, INITS)
    check_choice("direction", direction, DIRECTIONS)
    s_last = grid.sigmas[-1]

    def partial(c, mean, weights):
        log_w, delta = _moments(c, mean, grid, solver, init)
        moments = OutputMoments(delta, log_w, c + s_last**2)
        return jnp.sum(weights * kl_per_direction(moments, direction))

    arrays = (spectrum.eigenvalues, spectrum.mean, spectrum.weights)
    return chunked_sum(partial, arrays, (1.0, 0.0, 0.0))
