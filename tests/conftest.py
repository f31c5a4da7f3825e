"""Shared test set-up: quiet, deterministic hypothesis profile for CI's 2 cores."""

import jax
import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "schedopt",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("schedopt")


@pytest.fixture(autouse=True, scope="module")
def _fresh_jax_caches():
    """Drop compiled programs after each test module: a long run otherwise accumulates
    thousands of them (see scripts/run_tests.py)."""
    yield
    jax.clear_caches()


@pytest.fixture(scope="session")
def two_mode_mixture():
    """A 1-D two-mode mixture: weights 0.3 / 0.7 at -1 / 1, variances 0.05 / 0.02."""
    from schedopt.data import GaussianMixture

    return GaussianMixture(
        jnp.array([0.3, 0.7]), jnp.array([[-1.0], [1.0]]), jnp.array([[[0.05]], [[0.02]]])
    )
