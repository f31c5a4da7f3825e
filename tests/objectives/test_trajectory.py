"""Trajectory matching: the exact value on Gaussian data (closed-form gains applied to the
same initial noise), zero when student and teacher coincide, and a schedule fit reduces it."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt import gaussian as G
from schedopt.models import FunctionDenoiser, GaussianDenoiser
from schedopt.objectives.trajectory import TrajectoryMatching, trajectory_distance
from schedopt.optimize import optimize
from schedopt.sampling import Ancestral, ODESampler
from schedopt.schedules import EDM, PiecewiseLinear

C = jnp.array([0.05, 0.4, 2.0])


@pytest.mark.parametrize(
    "distance",
    ["mse", pytest.param("l2", marks=pytest.mark.slow), pytest.param("l1", marks=pytest.mark.slow)],
)
def test_value_is_the_closed_form_gain_error_on_gaussian_data(distance):
    with jax.enable_x64(True):
        den, schedule, key = GaussianDenoiser(C), EDM(sigma_max=20.0), jax.random.key(0)
        obj = TrajectoryMatching(
            den, ODESampler(5, "euler"), batch_size=64, reference_steps=40, distance=distance
        )
        y0 = obj.initial_states(schedule, key)
        gain = lambda solver, n: jnp.prod(solver.coefficients(C, G.step_grid(schedule, n)).a, 0)
        diff = (gain(G.Euler(), 5) - gain(G.Heun(), 40)) * y0
        expected = {
            "mse": jnp.mean(diff**2),
            "l2": jnp.mean(jnp.linalg.norm(diff, axis=1)),
            "l1": jnp.mean(jnp.abs(diff)),
        }[distance]
        np.testing.assert_allclose(eqx.filter_jit(obj)(schedule, key), expected, rtol=1e-9)


def test_student_equal_to_teacher_gives_zero():
    obj = TrajectoryMatching(
        GaussianDenoiser(C), ODESampler(8, "heun"), batch_size=16, reference_steps=8
    )
    assert float(eqx.filter_jit(obj)(EDM(), jax.random.key(0))) == 0.0


def test_distance_values_and_gradient_at_zero():
    a, b = jnp.zeros((2, 4)), jnp.ones((2, 4))
    assert float(trajectory_distance(a, b, "mse")) == 1.0
    assert float(trajectory_distance(a, b, "l1")) == 1.0
    assert float(trajectory_distance(a, b, "l2")) == 2.0
    grad = jax.grad(lambda x: trajectory_distance(x, a, "l2"))(a)
    assert bool(jnp.all(jnp.isfinite(grad)))


@pytest.mark.slow
def test_fitting_a_schedule_reduces_the_loss():
    den = GaussianDenoiser(jnp.geomspace(0.01, 1.0, 8))
    start = PiecewiseLinear.from_schedule(EDM(sigma_max=40.0), num_knots=8)
    obj = TrajectoryMatching(den, ODESampler(4, "euler"), batch_size=128, reference_steps=64)
    key = jax.random.key(1)
    result = optimize(start, obj, num_iterations=150, learning_rate=5e-2, progress=False)
    before, after = float(obj(start, key)), float(obj(result.schedule, key))
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: TrajectoryMatching(GaussianDenoiser(C), Ancestral(4)), "deterministic"),
        (
            lambda: TrajectoryMatching(GaussianDenoiser(C), ODESampler(4), batch_size=0),
            "batch_size",
        ),
        (
            lambda: TrajectoryMatching(GaussianDenoiser(C), ODESampler(4), distance="lpips"),
            "distance",
        ),
        (lambda: TrajectoryMatching(GaussianDenoiser(C), ODESampler(4), init="zero"), "init"),
        (
            lambda: TrajectoryMatching(GaussianDenoiser(C), ODESampler(4), reference_steps=0),
            "reference_steps",
        ),
        (
            lambda: TrajectoryMatching(GaussianDenoiser(C), ODESampler(4), reference_solver="rk9"),
            "solver",
        ),
        (
            lambda: TrajectoryMatching(FunctionDenoiser(lambda y, s: y), ODESampler(4)),
            "event_shape",
        ),
        (
            lambda: TrajectoryMatching(
                FunctionDenoiser(lambda y, s: y), ODESampler(4), event_shape=(2,), init="exact"
            ),
            "exact",
        ),
        (lambda: TrajectoryMatching(GaussianDenoiser(C), "euler"), "sampler"),
    ],
)
def test_bad_input_names_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_describe_is_json_friendly():
    import json

    obj = TrajectoryMatching(GaussianDenoiser(C), ODESampler(4, "heun"), batch_size=8)
    d = obj.describe()
    assert d["objective"] == "trajectory" and d["sampler"]["nfe"] == 7
    json.dumps(d)
