"""Shared test set-up: quiet, deterministic hypothesis profile for CI's 2 cores."""

import jax
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
