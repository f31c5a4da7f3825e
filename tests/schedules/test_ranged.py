"""``RangedSchedule``: a learnable range inside bounds, for every parameter value."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.schedules import EDM, MonotoneCubic, RangedSchedule, Tabulated, grid
from schedopt.schedules.registry import schedule_from_config, schedule_to_config

BOUNDS = (0.002, 160.0)


def test_the_shape_is_the_bases_and_the_range_is_the_given_one():
    base = MonotoneCubic.from_schedule(EDM(), 16)
    s = RangedSchedule.from_schedule(base, (0.001, 160.0), sigma_range=(0.002, 80.0))
    np.testing.assert_allclose(grid(s, 8)[:-1], grid(base, 8)[:-1], rtol=2e-4)
    narrow = RangedSchedule.from_schedule(base, BOUNDS, sigma_range=(1.5, 150.0))
    np.testing.assert_allclose([narrow.sigma_min, narrow.sigma_max], [1.5, 150.0], rtol=1e-5)
    t = jnp.linspace(0, 1, 11)
    np.testing.assert_allclose(narrow.fraction(t), s.fraction(t), atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_strictly_decreasing_and_inside_the_bounds_for_every_parameter_value(dtype):
    """Random and extreme logits (up to 1e4, where softmax shares underflow in float32)."""
    with jax.enable_x64(dtype == jnp.float64):
        base = MonotoneCubic.from_schedule(EDM(), 8)
        base = eqx.tree_at(lambda b: b.logits, base, base.logits.astype(dtype))
        rng = np.random.default_rng(0)
        t = jnp.linspace(0.0, 1.0, 257, dtype=dtype)
        for scale in (1.0, 30.0, 1e4):
            for _ in range(20):
                logits = jnp.asarray(scale * rng.normal(size=3), dtype)
                s = RangedSchedule(base, logits, BOUNDS)
                levels = s.noise_level(t)
                assert bool(jnp.all(jnp.isfinite(levels)))
                assert bool(jnp.all(jnp.diff(levels) > 0)), (scale, logits)
                assert float(levels[0]) >= BOUNDS[0] * (1 - 1e-6)
                assert float(levels[-1]) <= BOUNDS[1] * (1 + 1e-6)


def test_gradients_reach_the_range_and_the_base_unless_frozen():
    base = MonotoneCubic.from_schedule(EDM(), 8)
    loss = jax.grad(lambda s: jnp.sum(jnp.log(grid(s, 6)[:-1]) ** 2))
    free = loss(RangedSchedule.from_schedule(base, BOUNDS, (0.01, 50.0)))
    frozen = loss(RangedSchedule.from_schedule(base, BOUNDS, (0.01, 50.0), freeze_base=True))
    assert float(jnp.max(jnp.abs(free.range_logits))) > 0
    assert float(jnp.max(jnp.abs(free.base.logits))) > 0
    assert float(jnp.max(jnp.abs(frozen.range_logits))) > 0
    assert float(jnp.max(jnp.abs(frozen.base.logits))) == 0


def test_config_round_trip_rebuilds_the_same_grid():
    s = RangedSchedule.from_schedule(
        Tabulated.scaled_linear(), (0.0292, 14.61), (0.1, 9.0), gain=2.0, freeze_base=True
    )
    back = schedule_from_config(schedule_to_config(s))
    assert back.freeze_base is True and back.gain == 2.0 and back.bounds == s.bounds
    np.testing.assert_array_equal(grid(back, 7), grid(s, 7))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: RangedSchedule.from_schedule(EDM(), bounds=(1.0, 0.5)), "bounds"),
        (lambda: RangedSchedule.from_schedule(EDM(), bounds=(0.0, 5.0)), r"bounds\[0\]"),
        (lambda: RangedSchedule.from_schedule(EDM(), bounds="wide"), "bounds"),
        (lambda: RangedSchedule.from_schedule(EDM(), sigma_range=(5.0, 1.0)), "sigma_range"),
        (lambda: RangedSchedule(EDM(), jnp.zeros(2), BOUNDS), "range_logits"),
        (lambda: RangedSchedule("edm", jnp.zeros(3), BOUNDS), "base"),
        (lambda: RangedSchedule(EDM(), jnp.zeros(3), BOUNDS, gain=0.0), "gain"),
    ],
)
def test_bad_input_names_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()
