"""The controlled score-error model."""

import math

import jax
import jax.numpy as jnp
import pytest

from schedopt.analysis import PROFILES, PerturbedDenoiser, denoiser_error, error_profile
from schedopt.data import ring
from schedopt.models import GaussianMixtureDenoiser

GM = ring(8)
EXACT = GaussianMixtureDenoiser.from_mixture(GM)


def test_profiles_closed_forms():
    s = jnp.array([0.01, 0.5, 50.0])
    assert jnp.allclose(error_profile("flat", s), 1.0)
    assert jnp.allclose(error_profile("edm", s), s * 0.5 / jnp.sqrt(s**2 + 0.25))
    assert float(error_profile("bell", 0.5)) == pytest.approx(1.0)
    assert float(error_profile("bell", 0.5 * math.e)) == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert jnp.allclose(error_profile("low", s) + error_profile("high", s), 1.0)


@pytest.mark.parametrize("profile", PROFILES)
def test_zero_size_is_the_base_and_error_is_linear(profile):
    y = GM.sample(jax.random.key(0), 64) + 0.3 * jax.random.normal(jax.random.key(1), (64, 2))
    key = jax.random.key(2)
    base = EXACT(y, 0.3)
    assert jnp.array_equal(PerturbedDenoiser(EXACT, 0.0, profile, key=key)(y, 0.3), base)
    d1 = PerturbedDenoiser(EXACT, 0.1, profile, key=key)(y, 0.3) - base
    d2 = PerturbedDenoiser(EXACT, 0.2, profile, key=key)(y, 0.3) - base
    assert jnp.allclose(d2, 2.0 * d1, atol=1e-6)


def test_denoiser_error_measures_the_perturbation_size():
    # with a flat profile the RMS error per coordinate is size * rms(h), rms(h) ~ 1 by design
    levels = jnp.array([0.05, 0.5, 5.0])
    den = PerturbedDenoiser(EXACT, 0.1, "flat", key=jax.random.key(0))
    err = denoiser_error(den, EXACT, GM, levels, jax.random.key(1), num_samples=2000)
    assert jnp.all((err > 0.03) & (err < 0.3))
    assert jnp.all(denoiser_error(EXACT, EXACT, GM, levels, jax.random.key(1), 64) == 0.0)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="profile"):
        PerturbedDenoiser(EXACT, 0.1, "wiggly", key=jax.random.key(0))
    with pytest.raises(ValueError, match="size"):
        PerturbedDenoiser(EXACT, -0.1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="base"):
        PerturbedDenoiser(lambda y, s: y, 0.1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="noise_levels"):
        denoiser_error(EXACT, EXACT, GM, jnp.zeros((2, 2)), jax.random.key(0))
