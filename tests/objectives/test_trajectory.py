"""Trajectory matching on teacher pairs: the exact value on Gaussian data, zero when student
and teacher coincide, pairs computed once (memory and disk), held-out validation, the
soft (slack) variant, gradients to a learned range, and bad input."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt import gaussian as G
from schedopt.models import GaussianDenoiser
from schedopt.objectives import teacher as teacher_module
from schedopt.objectives.teacher import teacher_pairs
from schedopt.objectives.trajectory import TrajectoryMatching, per_sample_distance
from schedopt.optimize import optimize
from schedopt.sampling import Ancestral, ODESampler
from schedopt.schedules import EDM, MonotoneCubic, PiecewiseLinear, RangedSchedule

C = jnp.array([0.05, 0.4, 2.0])


@pytest.mark.parametrize(
    "distance",
    ["mse", pytest.param("l2", marks=pytest.mark.slow), pytest.param("l1", marks=pytest.mark.slow)],
)
def test_value_is_the_closed_form_gain_error_on_gaussian_data(distance):
    with jax.enable_x64(True):
        den, schedule = GaussianDenoiser(C), EDM(sigma_max=20.0)
        obj = TrajectoryMatching(
            den, ODESampler(5, "euler"), num_pairs=40, reference_steps=32, distance=distance
        )
        gain = G.Euler().propagate(
            C, jnp.zeros(3), G.step_grid(schedule, 5), jnp.zeros(3), jnp.ones(3)
        )[1]
        student = gain * float(schedule.noise_level(1.0)) * obj.pairs.noise
        expected = jnp.mean(per_sample_distance(student, obj.pairs.targets, distance))
        np.testing.assert_allclose(obj(schedule, jax.random.key(0)), expected, rtol=1e-10)


def test_zero_when_the_student_is_the_teacher():
    with jax.enable_x64(True):
        den = GaussianDenoiser(C)
        obj = TrajectoryMatching(den, ODESampler(12, "heun"), num_pairs=16, reference_steps=12)
        assert float(obj(EDM(), jax.random.key(0))) < 1e-20
        assert float(obj.validation_loss(EDM())) < 1e-20
        other = TrajectoryMatching(den, ODESampler(4, "euler"), pairs=obj.pairs)
        assert float(other(EDM(), jax.random.key(0))) > 1e-6


def test_pairs_are_computed_once_and_cached_on_disk(tmp_path, monkeypatch):
    den = GaussianDenoiser(C)
    settings = dict(teacher_steps=8, seed=3, cache_dir=tmp_path)
    first = teacher_pairs(den, (3,), 12, **settings)
    assert teacher_pairs(den, (3,), 12, **settings) is first  # memory
    assert len(list(tmp_path.glob("teacher-pairs-*.npz"))) == 1
    teacher_module._MEMORY.clear()
    monkeypatch.setattr(teacher_module, "_solve", lambda *a: pytest.fail("solved again"))
    again = teacher_pairs(den, (3,), 12, **settings)  # disk
    np.testing.assert_array_equal(again.targets, first.targets)
    assert again.describe()["fingerprint"] == first.describe()["fingerprint"]
    with pytest.raises(pytest.fail.Exception, match="solved again"):
        teacher_pairs(GaussianDenoiser(C * 2), (3,), 12, **settings)  # another model
    with pytest.raises(pytest.fail.Exception, match="solved again"):
        teacher_pairs(den, (3,), 12, **dict(settings, teacher_steps=9))  # another teacher


def test_validation_pairs_are_held_out():
    pairs = teacher_pairs(GaussianDenoiser(C), (3,), 20, teacher_steps=8, validation_fraction=0.25)
    assert pairs.noise.shape == (15, 3) and pairs.validation_noise.shape == (5, 3)
    every = np.concatenate([pairs.noise, pairs.validation_noise])
    assert len({tuple(row) for row in np.asarray(every).round(6)}) == 20


def test_the_student_starts_at_its_own_first_level_so_a_range_gets_gradients():
    obj = TrajectoryMatching(GaussianDenoiser(C), ODESampler(5, "dpmpp-2m"), num_pairs=32)
    schedule = RangedSchedule.from_schedule(
        MonotoneCubic.from_schedule(EDM(), 8), bounds=(0.002, 160.0), sigma_range=(0.01, 50.0)
    )
    grad = eqx.filter_grad(lambda s: obj(s, jax.random.key(0)))(schedule)
    assert float(jnp.max(jnp.abs(grad.range_logits))) > 0


def test_slack_forgives_what_a_nearby_noise_explains():
    den = GaussianDenoiser(C)
    pairs = teacher_pairs(den, (3,), 32, teacher_steps=16)
    strict = TrajectoryMatching(den, ODESampler(4, "euler"), pairs)
    soft = TrajectoryMatching(den, ODESampler(4, "euler"), pairs, slack=0.05)
    key = jax.random.key(0)
    assert float(soft(EDM(), key)) < float(strict(EDM(), key))
    grad = eqx.filter_grad(lambda s: soft(s, key))(PiecewiseLinear.from_schedule(EDM(), 6))
    assert bool(jnp.all(jnp.isfinite(grad.logits)))


def test_feature_map_and_batches():
    den = GaussianDenoiser(C)
    pairs = teacher_pairs(den, (3,), 32, teacher_steps=16)
    first = TrajectoryMatching(den, ODESampler(4, "euler"), pairs, feature_map=lambda x: x[:, :1])
    full = TrajectoryMatching(den, ODESampler(4, "euler"), pairs)
    assert float(first(EDM(), None)) < float(full(EDM(), None))  # one coordinate of three
    batched = TrajectoryMatching(den, ODESampler(4, "euler"), pairs, batch_size=8)
    a, b = batched(EDM(), jax.random.key(1)), batched(EDM(), jax.random.key(2))
    assert float(a) != float(b)


@pytest.mark.slow
def test_fitting_a_schedule_reduces_the_held_out_loss():
    den = GaussianDenoiser(C)
    obj = TrajectoryMatching(den, ODESampler(4, "euler"), num_pairs=64, reference_steps=64)
    start = PiecewiseLinear.from_schedule(EDM(), num_knots=8)
    result = optimize(start, obj, num_iterations=150, learning_rate=5e-2, progress=False)
    before, after = obj.validation_loss(start), obj.validation_loss(result.schedule)
    assert float(after) < 0.5 * float(before), (before, after)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: TrajectoryMatching(GaussianDenoiser(C), Ancestral(4)), "deterministic"),
        (lambda: TrajectoryMatching(GaussianDenoiser(C), "euler"), "sampler"),
        (lambda: TrajectoryMatching(GaussianDenoiser(C), ODESampler(4), distance="l3"), "distance"),
        (lambda: TrajectoryMatching(GaussianDenoiser(C), ODESampler(4), slack=1.5), "slack"),
        (lambda: TrajectoryMatching(GaussianDenoiser(C), ODESampler(4), pairs=3), "pairs"),
        (
            lambda: TrajectoryMatching(GaussianDenoiser(C), ODESampler(4), reference_steps=0),
            "teacher_steps",
        ),
        (
            lambda: TrajectoryMatching(
                GaussianDenoiser(C), ODESampler(4), num_pairs=8, batch_size=9
            ),
            "batch_size",
        ),
        (
            lambda: teacher_pairs(GaussianDenoiser(C), (3,), 4, validation_fraction=1.0),
            "validation",
        ),
        (lambda: teacher_pairs(GaussianDenoiser(C), (3,), 4, init="exact"), "init"),
    ],
)
def test_bad_input_names_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_describe_is_json_friendly():
    obj = TrajectoryMatching(GaussianDenoiser(C), ODESampler(4, "heun"), num_pairs=8)
    d = obj.describe()
    assert d["objective"] == "trajectory" and d["sampler"]["nfe"] == 7
    assert d["pairs"]["teacher_nfe"] == 127 and d["pairs"]["num_pairs"] == 8
    json.dumps(d)
