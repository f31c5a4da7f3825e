"""Family names and JSON configs."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.schedules import (
    FAMILIES,
    MonotoneCubic,
    make_schedule,
    schedule_from_config,
    schedule_to_config,
)


@pytest.mark.parametrize("name", sorted(set(FAMILIES) - {"tabulated"}))
def test_every_family_round_trips_through_json(name):
    s = make_schedule(name)
    config = json.loads(json.dumps(schedule_to_config(s)))
    back = schedule_from_config(config)
    assert type(back) is type(s)
    t = jnp.linspace(0, 1, 17)
    np.testing.assert_allclose(back.logsnr(t), s.logsnr(t), rtol=1e-6, atol=1e-6)


def test_learned_parameters_survive_the_round_trip():
    s = MonotoneCubic(logits=jnp.linspace(-1, 1, 9), sigma_min=0.01, sigma_max=30.0)
    back = schedule_from_config(schedule_to_config(s))
    assert back.sigma_min == 0.01 and back.sigma_max == 30.0
    np.testing.assert_array_equal(back.logits, s.logits)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown schedule family 'nope'"):
        make_schedule("nope")
    with pytest.raises(ValueError, match="bad parameters"):
        make_schedule("edm", colour=3)
    with pytest.raises(ValueError, match="unknown parameters"):
        schedule_from_config({"family": "edm", "params": {"colour": 1}})
    with pytest.raises(ValueError, match="'family'"):
        schedule_from_config({"params": {}})
