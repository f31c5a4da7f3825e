"""Large-``N`` theory of the Gaussian KL (Sun, Poor & Zhang, arXiv 2601.13602): Euler–Maclaurin
constant and tangent laws.

With ``phi_i(t) = arctan(s(t) / sqrt(c_i))``, Euler with exact initialisation on the
grid ``t_k = 1 - k / N`` (``final="min"``) has ``KL_i = I_i^2 / (4 N^2) + O(N^-3)`` in
either direction, where ``I_i = int_0^1 phi_i'(t)^2 dt = int_0^1 c_i s'^2 / (c_i + s^2)^2 dt``.
**[derived]** here (not copied from the paper), checked numerically in the tests.

Optimal schedules:

- one eigenvalue: ``phi`` linear in ``t`` minimises ``I``, i.e. the tangent law
  ``s = sqrt(c) tan(...)`` = ``Tangent(gamma=sqrt(c))``;
- tangent family for a spectrum (``s_max -> inf`` limit):
  ``I_i = (pi^2 / 8)(gamma / sqrt(c_i) + sqrt(c_i) / gamma)``, minimised in ``sum_i I_i^2``
  by ``gamma* = (sum_i c_i / sum_i 1 / c_i)^(1/4)`` **[derived]**;
- whole spectrum: the minimiser of ``sum_i I_i^2`` makes ``int sqrt(W(r)) dr`` linear in
  ``t`` with ``W(r) = sum_i I_i c_i / (c_i + r^2)^2``, solved here by fixed-point iteration
  on ``I_i`` **[derived]**. The exact finite-``N`` optimum is found by ``optimize``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._checks import check_positive_float, check_positive_int, is_concrete
from .._compile import fast_compile_options, filter_jit
from ..schedules.base import AbstractSchedule
from ..schedules.fixed import Tangent
from ..schedules.learnable import MonotoneCubic
from ..schedules.tabulated import Tabulated
from .spectrum import Spectrum

_CHUNK = 4096


def _gauss_legendre(num_panels: int, order: int = 8):
    nodes, weights = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(0.0, 1.0, num_panels + 1)
    half = np.diff(edges)[:, None] / 2
    mid = (edges[:-1] + edges[1:])[:, None] / 2
    return (mid + half * nodes).ravel(), (half * weights).ravel()


def _chunked(spectrum: Spectrum):
    """Eigenvalues and weights padded to a multiple of ``_CHUNK``, shape ``(chunks, _CHUNK)``."""
    d = spectrum.dim
    size = min(d, _CHUNK)
    pad = (-d) % size
    c = jnp.concatenate([spectrum.eigenvalues, jnp.ones((pad,), spectrum.eigenvalues.dtype)])
    w = jnp.concatenate([spectrum.weights, jnp.zeros((pad,), spectrum.weights.dtype)])
    return c.reshape(-1, size), w.reshape(-1, size), d


def path_lengths(schedule: AbstractSchedule, spectrum: Spectrum, num_panels: int = 256) -> Array:
    """``I_i = int_0^1 c_i s'(t)^2 / (c_i + s(t)^2)^2 dt`` per eigenvalue (Gauss–Legendre).

    >>> from schedopt.schedules import Tangent
    >>> I = path_lengths(Tangent(gamma=1.0, sigma_min=1e-3, sigma_max=1e3), Spectrum([1.0]))
    >>> round(float(I[0]), 2)  # (pi/2)^2 = 2.467 for the tangent law at c = gamma^2
    2.46
    """
    t, w = _gauss_legendre(check_positive_int("num_panels", num_panels))
    lam, dlam = schedule.logsnr_and_derivative(jnp.asarray(t))
    s = jnp.exp(-0.5 * lam)
    ds = -0.5 * s * dlam
    c = spectrum.eigenvalues

    def one(ci):
        return jnp.sum(w * ci * ds**2 / (ci + s**2) ** 2)

    return jax.lax.map(one, c, batch_size=_CHUNK)


def euler_maclaurin_constant(
    schedule: AbstractSchedule, spectrum: Spectrum, num_panels: int = 256
) -> Array:
    """``C = sum_i w_i I_i^2 / 4``, so that Euler's KL ``~ C / N^2`` (exact init, ``final="min"``).

    >>> from schedopt.schedules import EDM
    >>> float(euler_maclaurin_constant(EDM(), Spectrum([1.0]))) > 0
    True
    """
    lengths = path_lengths(schedule, spectrum, num_panels)
    return jnp.sum(spectrum.weights * lengths**2) / 4.0


def tangent_law(eigenvalue: float, sigma_min: float = 0.002, sigma_max: float = 80.0) -> Tangent:
    """The KL-optimal schedule for one eigenvalue ``c``: ``Tangent(gamma=sqrt(c))``.

    >>> float(tangent_law(4.0).gamma)
    2.0
    """
    c = check_positive_float("eigenvalue", eigenvalue)
    return Tangent(gamma=float(np.sqrt(c)), sigma_min=sigma_min, sigma_max=sigma_max)


def optimal_tangent_gamma(spectrum: Spectrum) -> Array:
    """``gamma* = (sum_i w_i c_i / sum_i w_i / c_i)^(1/4)`` (large-``sigma_max`` limit).

    >>> float(optimal_tangent_gamma(Spectrum([4.0])))
    2.0
    """
    c, w = spectrum.eigenvalues, spectrum.weights
    if is_concrete(c) and is_concrete(w):  # no compilation for a number
        c, w = np.asarray(c, np.float64), np.asarray(w, np.float64)
        return jnp.asarray((np.sum(w * c) / np.sum(w / c)) ** 0.25, spectrum.eigenvalues.dtype)
    return (jnp.sum(w * c) / jnp.sum(w / c)) ** 0.25


def asymptotically_optimal_schedule(
    spectrum: Spectrum,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    *,
    num_knots: int = 64,
    num_points: int = 2048,
    num_iterations: int = 30,
) -> MonotoneCubic:
    """The schedule minimising ``sum_i w_i I_i^2`` (Euler's leading KL constant).

    Fixed point: given ``I_i``, ``W(r) = sum_i w_i I_i c_i / (c_i + r^2)^2`` and the optimal
    ``t(s) = int_{s_min}^s sqrt(W) / int_{s_min}^{s_max} sqrt(W)``; then ``I_i`` is recomputed
    on that schedule (``I_i = Psi int c_i / (c_i + r^2)^2 / sqrt(W) dr``). Returned as a
    monotone cubic with ``num_knots`` knots. For one eigenvalue this is the tangent law.

    >>> s = asymptotically_optimal_schedule(Spectrum([1.0]), 1e-2, 1e2, num_iterations=3)
    >>> t = tangent_law(1.0, 1e-2, 1e2)
    >>> bool(abs(s.noise_level(0.5) - t.noise_level(0.5)) < 1e-2)
    True
    """
    from .._checks import check_sigma_range

    lo, hi = check_sigma_range(sigma_min, sigma_max)
    n = check_positive_int("num_points", num_points)
    iterations = check_positive_int("num_iterations", num_iterations)
    c_chunks, w_chunks, _ = _chunked(spectrum)
    table = _optimal_logsnr_table
    if spectrum.dim * n * iterations <= _FAST_COMPILE_WORK:  # runs in milliseconds
        table = filter_jit(_optimal_logsnr_table.__wrapped__, fast_compile_options())
    dense = Tabulated(table(c_chunks, w_chunks, lo, hi, n, iterations))
    return MonotoneCubic.from_schedule(dense, check_positive_int("num_knots", num_knots))


#: Eigenvalue-points-iterations below which the fixed point is compiled quickly (its run
#: time is milliseconds next to a second of compilation).
_FAST_COMPILE_WORK = 10**8


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _optimal_logsnr_table(c_chunks, w_chunks, lo, hi, n, num_iterations):
    """The fixed point of :func:`asymptotically_optimal_schedule` as ``n`` logSNR values
    uniform in ``t`` (one compiled program)."""
    # Trapezoid grid in log r (dense where r is small).
    log_r = jnp.linspace(np.log(lo), np.log(hi), n)
    r = jnp.exp(log_r)
    dr = jnp.diff(r)

    def kernel(c):  # (chunk, n): c / (c + r^2)^2
        return c[:, None] / (c[:, None] + r[None, :] ** 2) ** 2

    def weight_fn(lengths_chunks):
        def add(acc, xs):
            c, w, ell = xs
            return acc + jnp.sum((w * ell)[:, None] * kernel(c), axis=0), None

        total, _ = jax.lax.scan(add, jnp.zeros_like(r), (c_chunks, w_chunks, lengths_chunks))
        return total

    def trapezoid_cumulative(f):
        return jnp.concatenate([jnp.zeros((1,), f.dtype), jnp.cumsum(0.5 * (f[1:] + f[:-1]) * dr)])

    def iterate(lengths_chunks, _):
        root_w = jnp.sqrt(weight_fn(lengths_chunks))
        psi = trapezoid_cumulative(root_w)[-1]

        def lengths_of(c):
            integrand = kernel(c) / root_w[None, :]
            return psi * jnp.sum(0.5 * (integrand[:, 1:] + integrand[:, :-1]) * dr, axis=1)

        new = jax.lax.map(lengths_of, c_chunks)
        return new / jnp.max(new), None  # the scale of I does not change the schedule

    lengths, _ = jax.lax.scan(iterate, jnp.ones_like(c_chunks), None, length=num_iterations)
    cumulative = trapezoid_cumulative(jnp.sqrt(weight_fn(lengths)))
    t_of_r = cumulative / cumulative[-1]
    # Dense table (uniform in t), then adaptive knots: the tangent-like ends are steep.
    dense_t = jnp.linspace(0.0, 1.0, n)
    return -2.0 * jnp.interp(dense_t, t_of_r, log_r)
