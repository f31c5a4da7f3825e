"""The E_S / E_D / E_I decomposition against independent references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.analysis import PerturbedDenoiser, decompose_error, decompose_errors
from schedopt.data import GaussianMixture, ring
from schedopt.models import GaussianMixtureDenoiser
from schedopt.sampling import EulerMaruyama, ODESampler
from schedopt.schedules import EDM, LogSNRLinear

GM = ring(8)
EXACT = GaussianMixtureDenoiser.from_mixture(GM)
KEY = jax.random.key(0)


def _gaussian_1d(c):
    return GaussianMixture(jnp.ones(1), jnp.zeros((1, 1)), jnp.full((1, 1, 1), c))


@pytest.mark.parametrize("schedule", [EDM(), LogSNRLinear()])
def test_exact_denoiser_has_zero_score_error_and_total_below_sum(schedule):
    d = decompose_error(
        EXACT, GM, schedule, ODESampler(8, "euler"), KEY, num_samples=256, reference_steps=64
    )
    assert float(d.score) == 0.0
    assert float(d.discretisation) > 0 and float(d.initialisation) > 0
    assert float(d.total) <= d.sum_of_terms + 1e-6


@pytest.mark.parametrize("sigma_max", [2.0, 10.0])
def test_initialisation_error_matches_gaussian_closed_form(sigma_max):
    # 1-D N(0, c): the PF-ODE flow is linear, y(s) = y(S) sqrt((c + s^2) / (c + S^2)), and the
    # last step multiplies by c / (c + s_min^2); the start differs by x0 ~ N(0, c), so
    # E_I = c^1.5 / sqrt((c + S^2)(c + s_min^2)).
    c, s_min = 0.25, 0.002
    gm = _gaussian_1d(c)
    d = decompose_error(
        GaussianMixtureDenoiser.from_mixture(gm),
        gm,
        EDM(sigma_min=s_min, sigma_max=sigma_max),
        ODESampler(4, "heun"),
        KEY,
        num_samples=4000,
        reference_steps=128,
    )
    expected = c**1.5 / math.sqrt((c + sigma_max**2) * (c + s_min**2))
    assert float(d.initialisation) == pytest.approx(expected, rel=0.05)


@pytest.mark.slow
def test_initialisation_error_vanishes_as_sigma_max_grows():
    values = [
        float(
            decompose_error(
                EXACT,
                GM,
                EDM(sigma_max=s),
                ODESampler(4, "euler"),
                KEY,
                num_samples=256,
                reference_steps=64,
            ).initialisation
        )
        for s in (5.0, 20.0, 80.0)
    ]
    assert values[0] > values[1] > values[2]
    assert values[2] < 0.25 * values[0]


@pytest.mark.slow
def test_euler_discretisation_error_is_first_order():
    errs = [
        float(
            decompose_error(
                EXACT, GM, EDM(), ODESampler(n, "euler"), KEY, num_samples=256, reference_steps=256
            ).discretisation
        )
        for n in (16, 32, 64)
    ]
    assert errs[0] > errs[1] > errs[2]
    for a, b in zip(errs[:-1], errs[1:], strict=True):
        assert 1.6 < a / b < 2.6


def test_em_reference_with_the_same_grid_gives_zero_discretisation_error():
    # reference_steps <= intervals: the reference is the same Brownian path on the same grid
    sampler = EulerMaruyama(9, process="ve")
    d = decompose_error(EXACT, GM, EDM(), sampler, KEY, num_samples=128, reference_steps=8)
    assert float(d.discretisation) == 0.0
    assert float(d.score) == 0.0


@pytest.mark.slow
def test_em_discretisation_error_decreases_with_steps():
    errs = [
        float(
            decompose_error(
                EXACT,
                GM,
                LogSNRLinear(),
                EulerMaruyama(n, process="ve"),
                KEY,
                num_samples=256,
                reference_steps=256,
            ).discretisation
        )
        for n in (16, 64)
    ]
    assert errs[1] < 0.6 * errs[0]


def test_score_error_is_linear_in_the_perturbation_size():
    dens = {f"{a}": PerturbedDenoiser(EXACT, a, "edm", key=jax.random.key(3)) for a in (0.01, 0.02)}
    out = decompose_errors(
        dens, GM, EDM(), ODESampler(16, "euler"), KEY, num_samples=256, reference_steps=32
    )
    ratio = float(out["0.02"].score) / float(out["0.01"].score)
    assert ratio == pytest.approx(2.0, rel=0.1)
    # the score-free terms are shared
    assert float(out["0.02"].discretisation) == float(out["0.01"].discretisation)


def test_as_dict_is_plain_floats():
    d = decompose_error(
        EXACT, GM, EDM(), ODESampler(4, "euler"), KEY, num_samples=32, reference_steps=8
    ).as_dict()
    assert set(d) >= {"score", "discretisation", "initialisation", "total", "sum_of_terms"}
    assert all(isinstance(v, (float, int)) and np.isfinite(v) for v in d.values())


@pytest.mark.parametrize(
    "sampler, match",
    [
        (EulerMaruyama(8, process="vp"), "VE"),
        (EulerMaruyama(8, process="ve", noise="rademacher"), "noise='rademacher'"),
        (EulerMaruyama(1, process="ve"), "num_steps=1"),
    ],
)
def test_bad_samplers_are_named(sampler, match):
    with pytest.raises(ValueError, match=match):
        decompose_error(EXACT, GM, EDM(), sampler, KEY, num_samples=8)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_samples"):
        decompose_error(EXACT, GM, EDM(), ODESampler(4), KEY, num_samples=0)
    with pytest.raises(ValueError, match="denoisers"):
        decompose_errors({}, GM, EDM(), ODESampler(4), KEY)
    with pytest.raises(ValueError, match="denoisers\\['x'\\]"):
        decompose_errors({"x": 1.0}, GM, EDM(), ODESampler(4), KEY)
