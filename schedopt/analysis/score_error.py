"""A controlled score-error model and the noise-level profile of a denoiser's error.

:class:`PerturbedDenoiser` adds a smooth, fixed perturbation of chosen size and
noise-level profile to a base (usually exact) denoiser:

    D_eps(y; s) = D(y; s) + size * g(s) * h(y),   h(y) = sqrt(2 / F) A cos(W y / ell + b)

with ``A (d, F)``, ``W (F, d)`` standard normal and ``b ~ U(0, 2 pi)`` drawn once from
``key`` (random Fourier features, so ``E_y ||h(y)||^2 / d ~ 1`` and the same ``key``
gives the same field). The score error is ``size * g(s) h(y) / s^2``. Profiles ``g``:

===========  ===================================================================
``"flat"``   ``1``: the same x0-space error at every noise level
``"edm"``    ``s sd / sqrt(s^2 + sd^2)`` (EDM's ``c_out``): a preconditioned network's
             unit-scale output error, i.e. constant epsilon-error at low noise
``"bell"``   ``exp(-(ln s - ln sd)^2 / 2)``: concentrated at intermediate noise
``"low"``    ``sd^2 / (s^2 + sd^2)``: mostly at low noise
``"high"``   ``s^2 / (s^2 + sd^2)``: mostly at high noise
===========  ===================================================================

``sd`` is ``sigma_data`` (0.5 by default).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._checks import check_choice, check_positive_float, check_positive_int
from ..models.base import AbstractDenoiser, _broadcast_level

PROFILES = ("flat", "edm", "bell", "low", "high")


def error_profile(profile: str, noise_level: ArrayLike, sigma_data: float = 0.5) -> Array:
    """The noise-level profile ``g(s)`` of the controlled score error (see module docs).

    >>> [round(float(error_profile(p, 0.5)), 3) for p in ("flat", "edm", "bell", "low")]
    [1.0, 0.354, 1.0, 0.5]
    """
    check_choice("profile", profile, PROFILES)
    s = jnp.asarray(noise_level, dtype=jnp.result_type(float))
    sd2 = sigma_data**2
    if profile == "flat":
        return jnp.ones_like(s)
    if profile == "edm":
        return s * sigma_data / jnp.sqrt(s**2 + sd2)
    if profile == "bell":
        return jnp.exp(-0.5 * (jnp.log(s) - math.log(sigma_data)) ** 2)
    if profile == "low":
        return sd2 / (s**2 + sd2)
    return s**2 / (s**2 + sd2)


class PerturbedDenoiser(AbstractDenoiser):
    """``D(y; s) + size g(s) h(y)``: a base denoiser with a controlled, smooth error.

    ``size = 0`` gives the base denoiser exactly; the error is linear in ``size``.

    >>> from schedopt.models import GaussianDenoiser
    >>> base = GaussianDenoiser(jnp.ones(2))
    >>> den = PerturbedDenoiser(base, 0.1, "flat", key=jax.random.key(0))
    >>> y = jnp.ones((3, 2))
    >>> bool(jnp.allclose(PerturbedDenoiser(base, 0.0, "flat", key=jax.random.key(0))(y, 1.0),
    ...                   base(y, 1.0)))
    True
    """

    base: AbstractDenoiser
    size: Float[Array, ""]
    profile: str = eqx.field(static=True)
    sigma_data: float = eqx.field(static=True)
    amplitudes: Float[Array, "d f"]
    frequencies: Float[Array, "f d"]
    phases: Float[Array, " f"]

    def __init__(
        self,
        base: AbstractDenoiser,
        size: float | ArrayLike,
        profile: str = "flat",
        *,
        key: PRNGKeyArray,
        dim: int = 2,
        num_features: int = 64,
        length_scale: float = 0.5,
        sigma_data: float = 0.5,
    ):
        if not isinstance(base, AbstractDenoiser):
            raise ValueError(f"`base` must be an AbstractDenoiser, got base={base!r}")
        size = jnp.asarray(size, dtype=jnp.result_type(float))
        if size.shape != () or (not isinstance(size, jax.core.Tracer) and float(size) < 0):
            raise ValueError(f"`size` must be a scalar >= 0, got size={size!r}")
        self.base = base
        self.size = size
        self.profile = check_choice("profile", profile, PROFILES)
        self.sigma_data = check_positive_float("sigma_data", sigma_data)
        d = check_positive_int("dim", dim)
        f = check_positive_int("num_features", num_features)
        ell = check_positive_float("length_scale", length_scale)
        ka, kw, kb = jax.random.split(key, 3)
        self.amplitudes = jax.random.normal(ka, (d, f)) * math.sqrt(2.0 / f)
        self.frequencies = jax.random.normal(kw, (f, d)) / ell
        self.phases = jax.random.uniform(kb, (f,), maxval=2.0 * math.pi)

    def field(self, y: Float[Array, "batch d"]) -> Float[Array, "batch d"]:
        """The unit-scale error direction ``h(y)``."""
        if y.ndim != 2 or y.shape[1] != self.amplitudes.shape[0]:
            raise ValueError(
                f"`y` must have shape (batch, {self.amplitudes.shape[0]}), got y.shape={y.shape}"
            )
        return jnp.cos(y @ self.frequencies.T + self.phases) @ self.amplitudes.T

    def perturbation(self, y: Float[Array, "batch d"], noise_level: ArrayLike) -> Array:
        """``size g(s) h(y)``, the x0-space error added to the base denoiser."""
        g = error_profile(self.profile, noise_level, self.sigma_data)
        return self.size * _broadcast_level(g, y) * self.field(y)

    def __call__(self, y, noise_level):
        return self.base(y, noise_level) + self.perturbation(y, noise_level)


def denoiser_error(
    denoiser: AbstractDenoiser,
    reference: AbstractDenoiser,
    mixture,
    noise_levels: Float[ArrayLike, " m"],
    key: PRNGKeyArray,
    num_samples: int = 2048,
) -> Float[Array, " m"]:
    """RMS x0-space error ``sqrt(E ||D(y; s) - D_ref(y; s)||^2 / d)`` at each noise level.

    ``y = x0 + s eps`` with ``x0`` from ``mixture`` (anything with ``sample(key, n)``); the
    same ``x0`` and ``eps`` at every level (common random numbers).

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.data import GaussianMixture
    >>> gm = GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
    >>> exact = GaussianDenoiser(jnp.ones(2))
    >>> err = denoiser_error(exact, exact, gm, jnp.array([0.1, 1.0]), jax.random.key(0))
    >>> err.tolist()
    [0.0, 0.0]
    """
    levels = jnp.asarray(noise_levels, dtype=jnp.result_type(float))
    if levels.ndim != 1 or levels.shape[0] < 1:
        raise ValueError(f"`noise_levels` must be 1-D and non-empty, got shape {levels.shape}")
    n = check_positive_int("num_samples", num_samples)
    key_x, key_e = jax.random.split(key)
    x0 = mixture.sample(key_x, n)
    eps = jax.random.normal(key_e, x0.shape, x0.dtype)

    @eqx.filter_jit
    def one(den, ref, s):
        y = x0 + s * eps
        return jnp.sqrt(jnp.mean((den(y, s) - ref(y, s)) ** 2))

    return jnp.stack([one(denoiser, reference, s) for s in levels])
