"""Distribution-discrepancy objectives: they equal the metric on their own samples, shrink
as the sampler gets more steps, fit a schedule, and reject bad settings; plus the CLI."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.cli import main as cli_main
from schedopt.metrics.distances import frechet_distance, mmd, sliced_wasserstein
from schedopt.models import FunctionDenoiser, GaussianMixtureDenoiser
from schedopt.objectives.discrepancy import (
    MMD,
    NUM_PROJECTIONS,
    Frechet,
    SampleDiscrepancy,
    SlicedWasserstein,
    discrepancy_objective,
)
from schedopt.optimize import optimize
from schedopt.sampling import Ancestral, EulerMaruyama, ODESampler
from schedopt.schedules import EDM, LogSNRLinear, PiecewiseLinear


def _mixture():
    means = jnp.array([[-1.5, 0.0], [1.0, 1.0], [0.5, -1.5]])
    return GaussianMixtureDenoiser(jnp.array([0.3, 0.3, 0.4]), means, jnp.full((3, 2), 0.05))


DEN = _mixture()
DATA = DEN.sample(jax.random.key(100), 256)


def test_mmd_matches_a_direct_double_sum():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5
    h = np.array([0.5, 2.0])
    k = lambda a, b: sum(np.exp(-np.sum((a - b) ** 2) / (2 * hh**2)) for hh in h)
    kxx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
    kyy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    kxy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / 35
    np.testing.assert_allclose(mmd(x, y, h), kxx + kyy - 2 * kxy, rtol=1e-5)


def test_sliced_wasserstein_in_one_dimension_is_the_sorted_w2():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 1)), 2.0 * rng.normal(size=(50, 1)) + 1.0
    exact = np.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    np.testing.assert_allclose(sliced_wasserstein(x, y, jax.random.key(0), 3), exact, rtol=1e-5)
    # unequal sizes: a set against itself repeated twice has distance 0
    np.testing.assert_allclose(
        sliced_wasserstein(x, np.concatenate([x, x]), jax.random.key(0), 3), 0.0, atol=1e-6
    )
    # a shift a in d dimensions: E (theta . a)^2 = |a|^2 / d
    z = rng.normal(size=(200, 4))
    sw = sliced_wasserstein(z, z + 1.0, jax.random.key(2), 20_000)
    np.testing.assert_allclose(sw, 1.0, rtol=0.02)


def test_frechet_matches_scipy_sqrtm():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 3))
    y = rng.normal(size=(200, 3)) * [1.0, 2.0, 0.5] + 1.0
    cx, cy = np.cov(x.T), np.cov(y.T)
    expected = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(cx + cy - 2 * sqrtm(cx @ cy).real)
    with jax.enable_x64(True):
        np.testing.assert_allclose(frechet_distance(x, y), expected, rtol=1e-8)
        grad = jax.grad(lambda a: frechet_distance(a, y))(jnp.asarray(x))
        assert bool(jnp.all(jnp.isfinite(grad)))


@pytest.mark.parametrize(
    "name",
    [
        "sliced-w2",
        pytest.param("mmd", marks=pytest.mark.slow),
        pytest.param("frechet", marks=pytest.mark.slow),
    ],
)
def test_objective_is_the_metric_of_its_own_samples(name):
    obj = discrepancy_objective(name, DEN, ODESampler(6, "euler"), DATA, batch_size=128)
    schedule, key = EDM(), jax.random.key(0)
    key_samples, _, key_metric = jax.random.split(key, 3)

    @eqx.filter_jit
    def both(obj, schedule):
        return obj(schedule, key), obj.samples(schedule, key_samples)

    value, x = both(obj, schedule)
    expected = {
        "mmd": lambda: mmd(x, DATA, obj.distance.bandwidths if name == "mmd" else None),  # noqa: B023
        "sliced-w2": lambda: sliced_wasserstein(x, DATA, key_metric, NUM_PROJECTIONS),
        "frechet": lambda: frechet_distance(x, DATA),
    }[name]()
    np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-7)


def test_a_new_distance_is_a_function():
    """An energy distance, written as a plain function, is an objective, jits and fits."""

    def energy(x, y, key):  # 2 E|x - y| - E|x - x'| - E|y - y'| (smoothed at 0 for the gradient)
        d = lambda a, b: jnp.mean(jnp.sqrt(jnp.sum((a[:, None] - b[None]) ** 2, -1) + 1e-12))  # noqa: E731
        return 2 * d(x, y) - d(x, x) - d(y, y)

    obj = SampleDiscrepancy(DEN, ODESampler(4, "heun"), DATA, energy, batch_size=64)
    assert obj.name == "energy" and obj.describe()["distance"] == {"distance": "energy"}
    schedule = PiecewiseLinear.from_schedule(EDM(), num_knots=6)
    value, grad = eqx.filter_jit(eqx.filter_value_and_grad(lambda s: obj(s, jax.random.key(0))))(
        schedule
    )
    assert float(value) > 0 and float(jnp.linalg.norm(grad.logits)) > 0


@pytest.mark.slow
@pytest.mark.parametrize("cls", [MMD, SlicedWasserstein, Frechet])
def test_more_steps_give_a_smaller_discrepancy(cls):
    values = []
    for n in (2, 32):
        obj = cls(DEN, ODESampler(n, "euler"), DEN.sample(jax.random.key(5), 1024), batch_size=1024)
        values.append(float(eqx.filter_jit(obj)(EDM(), jax.random.key(6))))
    assert values[1] < 0.5 * values[0], values


@pytest.mark.slow
def test_feature_map_is_applied():
    obj = Frechet(DEN, ODESampler(4, "euler"), DATA, batch_size=64, feature_map=lambda x: x[:, :1])
    key = jax.random.key(3)
    key_samples = jax.random.split(key, 3)[0]
    x = obj.samples(EDM(), key_samples)
    np.testing.assert_allclose(obj(EDM(), key), frechet_distance(x[:, :1], DATA[:, :1]), rtol=1e-4)


@pytest.mark.slow
def test_stochastic_samplers_and_gradients():
    schedule = PiecewiseLinear.from_schedule(EDM(), num_knots=6)
    params, static = eqx.partition(schedule, eqx.is_inexact_array)
    for sampler in (EulerMaruyama(6, noise="rademacher", kappa=0.5), Ancestral(6)):
        obj = SlicedWasserstein(DEN, sampler, DATA, batch_size=64, data_batch_size=64)
        loss, grad = eqx.filter_jit(
            eqx.filter_value_and_grad(lambda p, o: o(eqx.combine(p, static), jax.random.key(1)))
        )(params, obj)
        assert np.isfinite(float(loss)) and float(jnp.linalg.norm(grad.logits)) > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mmd", "sliced-w2"])
def test_fitting_a_schedule_reduces_the_discrepancy(name):
    data = DEN.sample(jax.random.key(7), 2048)
    obj = discrepancy_objective(
        name, DEN, ODESampler(4, "euler"), data, batch_size=512, data_batch_size=512
    )
    start = PiecewiseLinear.from_schedule(LogSNRLinear(), num_knots=8)
    result = optimize(start, obj, num_iterations=150, learning_rate=5e-2, progress=False)
    evaluate = eqx.filter_jit(lambda s, k: obj(s, k))
    keys = [jax.random.key(1000 + i) for i in range(8)]
    before = np.mean([float(evaluate(start, k)) for k in keys])
    after = np.mean([float(evaluate(result.schedule, k)) for k in keys])
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: MMD(DEN, ODESampler(4), DATA[0]), "data"),
        (lambda: MMD(DEN, ODESampler(4), DATA, bandwidths=[1.0, -1.0]), "bandwidths"),
        (lambda: MMD(DEN, ODESampler(4), DATA, data_batch_size=10_000), "data_batch_size"),
        (lambda: MMD(DEN, ODESampler(4), DATA, batch_size=0), "batch_size"),
        (lambda: MMD(DEN, ODESampler(4), DATA, feature_map=3), "feature_map"),
        (lambda: Frechet(DEN, ODESampler(4), DATA, batch_size=2), "batch_size"),
        (lambda: SlicedWasserstein(DEN, ODESampler(4), DATA, num_projections=0), "num_projections"),
        (lambda: SlicedWasserstein(DEN, ODESampler(4), jnp.full((4, 2), jnp.nan)), "data"),
        (lambda: discrepancy_objective("kl", DEN, ODESampler(4), DATA), "discrepancy"),
        (
            lambda: MMD(FunctionDenoiser(lambda y, s: y), ODESampler(4), DATA, init="exact"),
            "exact",
        ),
    ],
)
def test_bad_input_names_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def _optimize_cli(tmp_path, *extra):
    args = ["optimize", "--dataset", "ring", "--num-steps", "4", "--iterations", "3"]
    args += ["--batch-size", "64", "--num-data", "256", "--no-progress", "--out", str(tmp_path)]
    return cli_main([*args, *extra])


@pytest.mark.slow
def test_cli_optimize_with_mmd(tmp_path, capsys):
    assert _optimize_cli(tmp_path, "--objective", "mmd") == 0
    card = json.loads((tmp_path / "schedule.json").read_text())
    assert card["objective"]["objective"] == "mmd"
    assert "mmd at 4 steps" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_optimize_with_a_stochastic_sampler(tmp_path):
    extra = ["--objective", "sliced-w2", "--solver", "euler-maruyama", "--noise", "rademacher"]
    assert _optimize_cli(tmp_path, *extra) == 0
    card = json.loads((tmp_path / "schedule.json").read_text())
    assert card["objective"]["sampler"]["noise"] == "rademacher"


def test_cli_rejects_bad_settings(tmp_path, capsys):
    assert _optimize_cli(tmp_path, "--objective", "mmd", "--dataset", "cifar") == 2
    assert "--dataset" in capsys.readouterr().err
    trajectory = ["optimize", "--objective", "trajectory", "--solver", "ancestral"]  # no data
    assert cli_main([*trajectory, "--num-steps", "4", "--out", str(tmp_path)]) == 2
    assert "deterministic" in capsys.readouterr().err
