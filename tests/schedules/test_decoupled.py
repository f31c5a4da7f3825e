"""DecoupledTimes: the denoiser told levels learned apart from the grid's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.data import ring
from schedopt.gaussian import Spectrum, step_grid
from schedopt.io import load_card, make_card, save_card
from schedopt.io.card import card_schedule
from schedopt.io.export import kdiffusion_sigmas
from schedopt.models import GaussianDenoiser, GaussianMixtureDenoiser
from schedopt.objectives import GaussianKL, SlicedWasserstein
from schedopt.optimize import optimize
from schedopt.sampling import SAMPLERS, make_sampler, time_inputs
from schedopt.schedules import (
    EDM,
    DecoupledTimes,
    MonotoneCubic,
    RangedSchedule,
    schedule_from_config,
    schedule_to_config,
)

C = jnp.array([0.3, 1.0])
DENOISER = GaussianDenoiser(C)


def _steps(name):
    return 3 if name in ("euler-maruyama",) else 4


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_zero_offsets_sample_exactly_the_inner_schedule(name):
    sampler = make_sampler(name, _steps(name))
    inner = MonotoneCubic.from_schedule(EDM(), 8)
    y0 = 80.0 * jax.random.normal(jax.random.key(0), (16, 2))
    key = jax.random.key(1)
    plain = sampler(DENOISER, inner, y0, key)
    wrapped = sampler(DENOISER, DecoupledTimes.from_schedule(inner, 5), y0, key)
    np.testing.assert_array_equal(np.asarray(wrapped), np.asarray(plain))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_offsets_reach_every_sampler_with_a_finite_gradient(name):
    sampler = make_sampler(name, _steps(name))
    y0 = 80.0 * jax.random.normal(jax.random.key(0), (16, 2))
    start = DecoupledTimes.from_schedule(EDM(), 4)

    def out(offsets):
        schedule = DecoupledTimes(EDM(), offsets, start.span)
        return jnp.mean(sampler(DENOISER, schedule, y0, jax.random.key(1)) ** 2)

    value, grad = jax.value_and_grad(out)(start.offsets + 0.1)
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))
    assert np.any(np.asarray(grad) != 0), name
    assert float(out(start.offsets + 0.1)) != float(out(start.offsets))


def test_one_euler_step_uses_the_shifted_level():
    offsets = jnp.array([0.4, -0.2])
    schedule = DecoupledTimes(EDM(), offsets, (0.002, 80.0))
    y0 = jnp.array([[3.0, -1.0]])
    got = make_sampler("euler", 2, final="min")(DENOISER, schedule, y0)
    s = np.asarray(EDM().noise_level(jnp.array([1.0, 0.5, 0.0])), np.float64)
    y = np.asarray(y0, np.float64)
    for a, b in zip(s[:-1], s[1:], strict=True):
        frac = (np.log(a) - np.log(0.002)) / (np.log(80.0) - np.log(0.002))
        told = a * np.exp(0.4 + (-0.2 - 0.4) * frac)
        d = np.asarray(C, np.float64) / (np.asarray(C, np.float64) + told**2) * y
        y = y + (b - a) * (y - d) / a
    np.testing.assert_allclose(np.asarray(got), y, rtol=2e-5)
    assert float(schedule.denoiser_level(0.0)) == 0.0  # a last step to the data: D(y, 0)


def test_grid_config_and_card_keep_the_offsets():
    inner = RangedSchedule.from_schedule(MonotoneCubic.from_schedule(EDM(), 8), (0.002, 160.0))
    schedule = DecoupledTimes(inner, jnp.array([0.1, -0.3, 0.2]), (0.01, 100.0))
    t = jnp.linspace(0, 1, 9)
    assert bool(jnp.all(schedule.logsnr(t) == inner.logsnr(t)))
    back = schedule_from_config(schedule_to_config(schedule))
    np.testing.assert_array_equal(np.asarray(back.offsets), np.asarray(schedule.offsets))
    assert back.span == (0.01, 100.0) and isinstance(back.schedule, RangedSchedule)
    card = make_card(schedule, num_steps=5)
    assert card["schedule"]["family"] == "decoupled"
    loaded = card_schedule(card)
    level = jnp.array([0.5, 3.0])
    np.testing.assert_allclose(loaded.denoiser_level(level), schedule.denoiser_level(level))


def test_card_round_trip_on_disk_and_exporters_refuse(tmp_path):
    card = make_card(DecoupledTimes.from_schedule(EDM(), 3), num_steps=4)
    path = save_card(tmp_path / "card.json", card)
    assert load_card(path)["schedule"]["family"] == "decoupled"
    with pytest.raises(ValueError, match="DecoupledTimes"):
        kdiffusion_sigmas(card)


def test_grid_only_objectives_and_closed_forms_refuse():
    schedule = DecoupledTimes.from_schedule(EDM(), 3)
    with pytest.raises(ValueError, match="GaussianKL sees only the grid"):
        optimize(schedule, GaussianKL(Spectrum([1.0]), num_steps=4), num_iterations=2)
    with pytest.raises(ValueError, match="closed forms see only the grid"):
        step_grid(schedule, 4)


def test_a_sample_fit_moves_the_offsets_and_lowers_its_loss():
    mixture = ring()
    denoiser = GaussianMixtureDenoiser.from_mixture(mixture)
    data = mixture.sample(jax.random.key(0), 1024)
    objective = SlicedWasserstein(
        denoiser, make_sampler("euler", 3), data, batch_size=256, data_batch_size=256
    )
    start = DecoupledTimes.from_schedule(EDM(), 4)
    result = optimize(start, objective, num_iterations=40, learning_rate=5e-2, progress=False)
    assert float(jnp.max(jnp.abs(result.schedule.offsets))) > 0.05
    key = jax.random.key(7)
    assert float(objective(result.schedule, key)) < float(objective(start, key))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: DecoupledTimes(EDM(), jnp.zeros(1), (0.1, 1.0)), "offsets"),
        (lambda: DecoupledTimes(EDM(), jnp.zeros((2, 2)), (0.1, 1.0)), "offsets"),
        (lambda: DecoupledTimes(EDM(), jnp.zeros(2), (1.0, 0.1)), "span"),
        (lambda: DecoupledTimes(EDM(), jnp.zeros(2), "wide"), "span='wide'"),
        (lambda: DecoupledTimes("edm", jnp.zeros(2), (0.1, 1.0)), "`schedule`"),
        (lambda: DecoupledTimes.from_schedule(EDM(), 1), "num_knots=1"),
        (
            lambda: DecoupledTimes.from_schedule(DecoupledTimes.from_schedule(EDM())),
            "already",
        ),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_time_inputs_passes_a_plain_schedule_through():
    assert time_inputs(DENOISER, EDM()) is DENOISER
