"""Shared test set-up: quiet, deterministic hypothesis profile for CI's 2 cores."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "schedopt",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("schedopt")
