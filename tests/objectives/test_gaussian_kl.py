"""The Gaussian-KL objective, and the learned schedule it leads to."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.gaussian import Spectrum, gaussian_kl, step_grid, tangent_law
from schedopt.objectives import AbstractObjective, GaussianKL
from schedopt.optimize import optimize
from schedopt.schedules import EDM, MonotoneCubic, PiecewiseLinear, Tangent, grid


def test_objective_equals_the_closed_form():
    sp = Spectrum([0.2, 1.0, 3.0])
    obj = GaussianKL(sp, num_steps=7, solver="heun", init="vp", direction="reverse")
    expected = gaussian_kl(sp, step_grid(EDM(), 7), "heun", "vp", "reverse")
    np.testing.assert_allclose(obj(EDM(), jax.random.key(0)), expected, rtol=1e-6)


@pytest.mark.parametrize("final", ["min", "zero"])
def test_learned_schedule_for_one_eigenvalue_is_the_tangent_law(final):
    # Sun, Poor & Zhang: for one eigenvalue, equal steps in phi = atan(s / sqrt(c)) are optimal
    # at any N (-log cos^2 is convex), i.e. the tangent law gamma = sqrt(c).
    c, n = 0.5, 8
    knots = n if final == "min" else n - 1  # knots on the grid's schedule points
    start = PiecewiseLinear.from_schedule(EDM(), knots, placement="uniform")
    objective = GaussianKL(Spectrum([c]), num_steps=n, final=final)
    result = optimize(start, objective, num_iterations=3000, learning_rate=3e-2, progress=False)
    learned = np.asarray(grid(result.schedule, n, final))
    target = np.asarray(grid(tangent_law(c), n, final))
    positive = target > 0
    deviation = np.max(np.abs(learned[positive] / target[positive] - 1))
    assert deviation < 0.01, (learned, target)
    assert result.final_loss < float(objective(EDM(), None))


def test_tuning_a_fixed_family_finds_the_optimal_gamma():
    result = optimize(
        Tangent(gamma=0.3),
        GaussianKL(Spectrum([2.0]), num_steps=6, final="min"),
        num_iterations=600,
        learning_rate=5e-2,
        progress=False,
    )
    np.testing.assert_allclose(result.schedule.gamma, np.sqrt(2.0), rtol=1e-2)


def test_learned_beats_every_baseline_on_digits():
    sp = Spectrum.digits()
    objective = GaussianKL(sp, num_steps=10)
    result = optimize(
        MonotoneCubic.from_schedule(EDM(), 32), objective, num_iterations=800, progress=False
    )
    from schedopt.baselines import baseline_schedules

    for name, schedule in baseline_schedules(sp).items():
        assert result.final_loss < float(objective(schedule, None)), name


@pytest.mark.parametrize("solver", ["heun", "euler-maruyama"])
def test_gradient_with_respect_to_knots_matches_finite_differences(solver):
    # EM ends with a noiseless denoise step: its zero noise variance must not make it NaN
    with jax.enable_x64(True):
        objective = GaussianKL(Spectrum.power_law(20), num_steps=6, solver=solver)
        s = MonotoneCubic.from_schedule(EDM(), 8)

        @jax.jit
        def loss(logits):
            return objective(MonotoneCubic(logits=logits, knots=s.knots), None)

        g = jax.grad(loss)(s.logits)
        eps = 1e-5
        for i in range(s.num_knots):
            e = jnp.zeros_like(s.logits).at[i].set(eps)
            fd = (loss(s.logits + e) - loss(s.logits - e)) / (2 * eps)
            np.testing.assert_allclose(g[i], fd, rtol=1e-4, atol=1e-8)


def test_describe_and_validation():
    d = GaussianKL(Spectrum([1.0]), num_steps=4, solver="heun").describe()
    assert d["objective"] == "gaussian-kl" and d["solver"] == "heun" and d["num_steps"] == 4
    with pytest.raises(ValueError, match="num_steps=0"):
        GaussianKL(Spectrum([1.0]), num_steps=0)
    with pytest.raises(ValueError, match="init='warm'"):
        GaussianKL(Spectrum([1.0]), init="warm")
    with pytest.raises(ValueError, match="solver='rk4'"):
        GaussianKL(Spectrum([1.0]), solver="rk4")


def test_a_researcher_adds_an_objective_with_one_class():
    class EndToEndNoise(AbstractObjective):
        target: float = 1.0

        def __call__(self, schedule, key):
            return (schedule.noise_level(0.5) - self.target) ** 2

    # EDM's rho is its one trainable parameter; s(0.5) = 1 needs rho ~ 14.
    result = optimize(
        EDM(), EndToEndNoise(target=1.0), num_iterations=1000, learning_rate=0.2, progress=False
    )
    np.testing.assert_allclose(result.schedule.noise_level(0.5), 1.0, rtol=1e-2)
    assert EndToEndNoise().describe() == {"objective": "objective", "target": 1.0}
