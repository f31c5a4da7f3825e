"""Adapters: a model that predicts the true target (eps, v or x0) must give back x0."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.models import FunctionDenoiser, GaussianDenoiser, PredictionDenoiser
from schedopt.schedules import VE, VP, Flow

PROCESSES = {"vp": VP(), "ve": VE(), "flow": Flow()}


def _targets(process, x0, eps, s):
    """The regression targets written from their textbook definitions."""
    lam = -2.0 * jnp.log(s)
    alpha, sigma = process.alpha(lam), process.sigma(lam)
    x = alpha * x0 + sigma * eps
    if isinstance(process, Flow):
        t = sigma  # x = (1 - t) x0 + t eps
        np.testing.assert_allclose(alpha, 1.0 - t, rtol=1e-5)
        v = eps - x0
    else:  # Salimans & Ho on the variance-normalised state
        r = jnp.sqrt(alpha**2 + sigma**2)
        v = (alpha * eps - sigma * x0) / r
    return x, {"eps": eps, "v": v, "x0": x0}


@pytest.mark.parametrize("process", list(PROCESSES))
@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
@pytest.mark.parametrize("s", [0.05, 1.0, 20.0])
def test_true_prediction_recovers_x0(process, prediction, s):
    proc = PROCESSES[process]
    k1, k2 = jax.random.split(jax.random.key(0))
    x0 = jax.random.normal(k1, (4, 3))
    eps = jax.random.normal(k2, (4, 3))
    x, targets = _targets(proc, x0, eps, jnp.float32(s))
    y = x / proc.alpha(-2.0 * jnp.log(jnp.float32(s)))

    def model(x_in, cond):
        np.testing.assert_allclose(x_in, x, rtol=1e-5, atol=1e-5)  # the model sees x = alpha y
        assert cond.shape == (4,)
        return targets[prediction]

    den = PredictionDenoiser(model, prediction, process)
    np.testing.assert_allclose(den(y, s), x0, rtol=1e-4, atol=1e-4 * max(1.0, s))


def test_vp_v_is_the_plain_salimans_ho_target():
    s = 0.7
    lam = -2 * np.log(s)
    alpha, sigma = VP().alpha(lam), VP().sigma(lam)
    x0, eps = jnp.array([[1.0, -2.0]]), jnp.array([[0.5, 0.3]])
    v = alpha * eps - sigma * x0
    den = PredictionDenoiser(lambda x, c: v, "v", "vp")
    np.testing.assert_allclose(den((alpha * x0 + sigma * eps) / alpha, s), x0, rtol=1e-5)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_oracle_round_trip(prediction):
    """Posterior-mean predictions of an oracle, wrapped back, equal the oracle."""
    oracle = GaussianDenoiser(jnp.array([0.3, 1.0, 2.0]), mean=jnp.array([1.0, 0.0, -1.0]))
    proc = VP()

    def model(x, logsnr):
        s = jnp.exp(-0.5 * logsnr)[:, None]
        alpha, sigma = proc.alpha(logsnr)[:, None], proc.sigma(logsnr)[:, None]
        y = x / alpha
        d = oracle(y, s[:, 0])
        e = (y - d) / s
        return {"x0": d, "eps": e, "v": alpha * e - sigma * d}[prediction]

    den = PredictionDenoiser(model, prediction, proc)
    y = jax.random.normal(jax.random.key(1), (5, 3)) * 2
    levels = jnp.array([0.01, 0.3, 1.0, 4.0, 30.0])
    np.testing.assert_allclose(den(y, levels), oracle(y, levels), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "conditioning, expected",
    [
        ("logsnr", lambda s: -2 * np.log(s)),
        ("noise_level", lambda s: s),
        ("sigma", lambda s: s / np.sqrt(1 + s**2)),
        ("edm", lambda s: 0.25 * np.log(s)),
        (lambda s: 10 * s, lambda s: 10 * s),
    ],
)
def test_conditioning(conditioning, expected):
    seen = {}

    def model(x, cond):
        seen["cond"] = cond
        return jnp.zeros_like(x)

    PredictionDenoiser(model, "eps", "vp", conditioning=conditioning)(jnp.ones((2, 1)), 0.5)
    np.testing.assert_allclose(seen["cond"], np.full(2, expected(0.5)), rtol=1e-6)


def test_function_denoiser_and_jit():
    den = FunctionDenoiser(lambda y, s: y / (1 + s**2))
    out = eqx.filter_jit(lambda d, y: d(y, 1.0))(den, jnp.ones((2, 2)))
    np.testing.assert_allclose(out, 0.5)
    assert jnp.allclose(den.velocity(jnp.ones((1, 1)), 1.0), 0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(prediction="score"), "prediction"),
        (dict(process="cosine"), "process"),
        (dict(conditioning="timestep"), "conditioning"),
        (dict(model=3), "model"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = dict(model=lambda x, c: x, prediction="eps", process="vp") | kwargs
    with pytest.raises(ValueError, match=match):
        PredictionDenoiser(**args)
    with pytest.raises(ValueError, match="fn"):
        FunctionDenoiser(3)
