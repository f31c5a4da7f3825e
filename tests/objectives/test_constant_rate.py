"""Constant-rate scheduling (Okada et al.): measures against closed forms, speeds against analytic
speeds, the direct construction against analytic schedules, the optax objective against
the direct construction, training densities by Monte Carlo, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.constant_rate import (
    AbstractMeasure,
    Combined,
    DataPrediction,
    GaussianFrechet,
    NoisePrediction,
    SampleFrechet,
    Speed,
    combine,
    constant_rate_schedule,
    logsnr_grid,
    sample_bank,
    tabulate_speed,
)
from schedopt.metrics import frechet_distance_gaussians
from schedopt.models import GaussianDenoiser
from schedopt.models.noise import FromSchedule
from schedopt.objectives.constant_rate import ConstantRate
from schedopt.optimize import optimize
from schedopt.schedules import EDM, LogSNRLinear, PiecewiseLinear

EIG = np.array([0.02, 0.3, 1.7, 4.0])
LAM_MAX, LAM_MIN = -2 * np.log(0.002), -2 * np.log(80.0)


def _alpha(lam):
    return np.sqrt(1.0 / (1.0 + np.exp(-np.asarray(lam, np.float64))))


def _fd_reference(eig, mean, rotation, la, lb):
    """Independent reference: the general Fréchet formula on the full diffused covariances."""
    cov = (rotation * eig) @ rotation.T
    out = []
    for a, b in zip(la, lb, strict=True):
        aa, ab = _alpha(a), _alpha(b)
        ca = aa**2 * cov + (1 - aa**2) * np.eye(len(eig))
        cb = ab**2 * cov + (1 - ab**2) * np.eye(len(eig))
        out.append(float(frechet_distance_gaussians(aa * mean, ca, ab * mean, cb)))
    return np.array(out)


# ---- measures against closed forms ---------------------------------------------------------


def test_gaussian_frechet_matches_general_frechet_formula_in_float64():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    mean = rng.standard_normal(4)
    lam = np.linspace(6.0, -6.0, 7)
    with jax.enable_x64(True):
        ref = _fd_reference(EIG, mean, q, lam[:-1], lam[1:])
        # the measure works in the eigenbasis: rotate the mean into it
        got = GaussianFrechet(jnp.asarray(EIG), jnp.asarray(q.T @ mean)).pairwise(lam)
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-9)


@pytest.mark.parametrize("method", ["local", "exact"])
def test_frechet_estimator_equals_closed_form_of_its_sample_bank(method):
    # identity features: the fitted Gaussians are the diffused sample Gaussian exactly
    # (the noise bank is decorrelated), so the estimator must equal the closed form on
    # the bank's sample mean and covariance; "local" up to its O(step^2) relative error.
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        x = rng.standard_normal((600, 4)) * np.sqrt(EIG) + np.array([0.5, 0, 0, -1.0])
        measure = SampleFrechet.from_data(x, method=method)
        lam = np.linspace(LAM_MAX, LAM_MIN, 49)
        x0 = np.asarray(measure.data)
        cov = np.cov(x0.T)
        eig, vec = np.linalg.eigh(cov)
        ref = GaussianFrechet(jnp.asarray(eig), jnp.asarray(vec.T @ x0.mean(0))).pairwise(lam)
        got, ref = np.asarray(measure.pairwise(lam)), np.asarray(ref)
        if method == "exact":
            # float64 cancellation of tr(C_a) + tr(C_b) - 2 tr(...) ~ 1e-16 * tr(C) * 100
            np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-13)
            return
        # local = sum_i dV_i^2 / (2 (V_i(a) + V_i(b))) per eigendirection, exact =
        # sum_i dV_i^2 / (sqrt V_i(a) + sqrt V_i(b))^2: their ratio per direction is
        # 1 - (sqrt V(a) - sqrt V(b))^2 / (2 (V(a) + V(b))) (the mean terms are equal), so
        # ref * (1 - largest deficit) <= got <= ref, up to float64 round-off (1e-6 relative:
        # differences of states that agree to ~1e-6 at the clean end)
        v = 1 + _alpha(lam)[:, None] ** 2 * (eig - 1)
        root = np.sqrt(v)
        deficit = np.max((root[:-1] - root[1:]) ** 2 / (2 * (v[:-1] + v[1:])), axis=1)
        assert np.all(got <= ref * (1 + 1e-6))
        assert np.all(got >= ref * (1 - deficit) * (1 - 1e-6))
        assert deficit.max() < 0.01


def test_frechet_estimator_matches_population_closed_form_in_float32():
    # Monte Carlo: 4000 samples in 4-D, relative error of the sample covariance ~ 2-3 %
    x = GaussianDenoiser(jnp.asarray(EIG)).sample(jax.random.key(2), 4000)
    # centre exactly: the sample mean's error ~ sqrt(c / n) enters first order in d alpha
    # and would dominate the (second-order) covariance term at the noisy end
    x = x - x.mean(0)
    lam = logsnr_grid(33)
    got = np.asarray(SampleFrechet.from_data(x).pairwise(lam))
    ref = np.asarray(GaussianFrechet(jnp.asarray(EIG)).pairwise(lam))
    np.testing.assert_allclose(got, ref, rtol=0.1)
    assert abs(np.sum(np.sqrt(got)) / np.sum(np.sqrt(ref)) - 1) < 0.03


def test_sample_bank_noise_is_decorrelated_and_white():
    x = np.random.default_rng(3).standard_normal((200, 5))
    x0, eps = sample_bank(x, 150, seed=4)
    e = np.asarray(eps, np.float64)
    xc = np.asarray(x0, np.float64) - np.asarray(x0).mean(0)
    np.testing.assert_allclose(e.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.cov(e.T), np.eye(5), atol=1e-5)
    np.testing.assert_allclose(xc.T @ e, 0.0, atol=1e-3)
    _, raw = sample_bank(x, 150, seed=4, decorrelate=False)
    assert np.abs(xc.T @ np.asarray(raw)).max() > 1.0


def _prediction_reference(kind, x0, eps, la, lb):
    """E ||f(x, a) - f(x, b)||^2 for the exact Gaussian denoiser (diagonal, zero mean):
    x0_hat = c alpha / V x, eps_hat = sigma / V x with V = 1 + alpha^2 (c - 1), and x the
    bank diffused to the midpoint level."""
    c = EIG
    out = []
    for a, b in zip(la, lb, strict=True):
        m = 0.5 * (a + b)
        x = _alpha(m) * x0 + np.sqrt(1 - _alpha(m) ** 2) * eps
        gains = []
        for lam in (a, b):
            al = _alpha(lam)
            v = 1 + al**2 * (c - 1)
            gains.append(c * al / v if kind == "x0" else np.sqrt(1 - al**2) / v)
        out.append(np.mean(np.sum(((gains[0] - gains[1]) * x) ** 2, axis=1)))
    return np.array(out)


@pytest.mark.parametrize("cls", [DataPrediction, NoisePrediction])
def test_prediction_measures_match_gaussian_closed_form(cls):
    with jax.enable_x64(True):
        den = GaussianDenoiser(jnp.asarray(EIG))
        x = den.sample(jax.random.key(5), 500)
        measure = cls.from_data(den, x)
        lam = np.linspace(LAM_MAX, LAM_MIN, 17)
        ref = _prediction_reference(
            cls.name, np.asarray(measure.data), np.asarray(measure.noise), lam[:-1], lam[1:]
        )
        np.testing.assert_allclose(np.asarray(measure.pairwise(lam)), ref, rtol=1e-9)
        # batched evaluation gives the same numbers
        batched = cls.from_data(den, x, batch_size=100)
        np.testing.assert_allclose(batched.pairwise(lam), measure.pairwise(lam), rtol=1e-12)


def test_prediction_measure_edm_input_differs_from_vp_input():
    den = GaussianDenoiser(jnp.asarray(EIG))
    x = den.sample(jax.random.key(6), 256)
    vp = DataPrediction.from_data(den, x, input="vp")(1.0, 0.0)
    edm = DataPrediction.from_data(den, x, input="edm")(1.0, 0.0)
    assert float(vp) > 0 and float(edm) > 0 and abs(float(vp) / float(edm) - 1) > 0.05


def test_combined_and_normalised_combination():
    a, b = GaussianFrechet(jnp.asarray(EIG)), GaussianFrechet(jnp.asarray(EIG[:2]))
    lam = logsnr_grid(17)
    both = Combined((a, b), jnp.array([0.5, 2.0]))
    np.testing.assert_allclose(
        both.pairwise(lam), 0.5 * a.pairwise(lam) + 2.0 * b.pairwise(lam), rtol=1e-6
    )
    normed = combine([a, b], normalize_on=lam)
    lengths = [
        jnp.sum(jnp.sqrt(w * m.pairwise(lam)))
        for m, w in zip(normed.measures, normed.weights, strict=True)
    ]
    np.testing.assert_allclose(lengths, [1.0, 1.0], rtol=1e-5)
    assert combine([a]) is a


# ---- speeds and the direct construction ----------------------------------------------------


@pytest.mark.parametrize("variable", ["alpha", "logsnr"])
def test_tabulated_speed_matches_analytic_speed(variable):
    # d sqrt(V_i) / d alpha = alpha (c_i - 1) / sqrt(V_i); per unit logSNR multiply by
    # d alpha / d lam = alpha (1 - alpha^2) / 2
    speed = tabulate_speed(GaussianFrechet(jnp.asarray(EIG)), num_points=513, variable=variable)
    al = _alpha(np.asarray(speed.midpoints))[:, None]
    v = np.sqrt(np.sum(al**2 * (EIG - 1) ** 2 / (1 + al**2 * (EIG - 1)), axis=1))
    if variable == "logsnr":
        v = v * al[:, 0] * (1 - al[:, 0] ** 2) / 2
    np.testing.assert_allclose(np.asarray(speed.values), v, rtol=2e-3)


def test_one_dimensional_constant_rate_schedule_is_linear_in_root_variance():
    # one eigenvalue c: the Fréchet length element is |d sqrt(V)|, so the constant-rate
    # schedule makes sqrt(V) = sqrt(1 + alpha^2 (c - 1)) linear in t
    c = 5.0
    schedule = constant_rate_schedule(GaussianFrechet(jnp.array([c])), num_points=257)
    t = np.linspace(0, 1, 41)
    root = np.sqrt(1 + _alpha([LAM_MAX, LAM_MIN]) ** 2 * (c - 1))
    expected_alpha = np.sqrt(((root[0] + t * (root[1] - root[0])) ** 2 - 1) / (c - 1))
    np.testing.assert_allclose(_alpha(schedule.logsnr(t)), expected_alpha, atol=2e-4)


def test_mean_only_measure_gives_schedule_linear_in_alpha():
    # unit covariance and a mean: FD = |mu|^2 (d alpha)^2, so alpha is linear in t
    measure = GaussianFrechet(jnp.ones(3), mean=jnp.array([1.0, -2.0, 0.5]))
    schedule = constant_rate_schedule(measure, num_points=257)
    t = np.linspace(0, 1, 41)
    ends = _alpha([LAM_MAX, LAM_MIN])
    np.testing.assert_allclose(
        _alpha(schedule.logsnr(t)), ends[0] + t * (ends[1] - ends[0]), atol=2e-4
    )


def test_xi_zero_in_logsnr_is_the_logsnr_uniform_schedule():
    speed = tabulate_speed(GaussianFrechet(jnp.asarray(EIG)), num_points=65, variable="logsnr")
    t = np.linspace(0, 1, 21)
    np.testing.assert_allclose(
        speed.schedule(xi=0.0).logsnr(t), LogSNRLinear().logsnr(t), atol=1e-3
    )


def test_xi_one_does_not_depend_on_the_variable_but_other_xi_do():
    measure = GaussianFrechet(jnp.asarray(EIG))
    t = np.linspace(0, 1, 21)
    by = {v: tabulate_speed(measure, num_points=257, variable=v) for v in ("alpha", "logsnr")}
    np.testing.assert_allclose(
        by["alpha"].logsnr_at(t, 1.0), by["logsnr"].logsnr_at(t, 1.0), atol=1e-4
    )
    assert np.max(np.abs(by["alpha"].logsnr_at(t, 1.5) - by["logsnr"].logsnr_at(t, 1.5))) > 0.1


def test_schedule_object_is_the_pchip_inversion_and_is_endpoint_exact():
    speed = tabulate_speed(GaussianFrechet(jnp.asarray(EIG)), num_points=65)
    schedule = speed.schedule(1.2)
    t = np.linspace(0, 1, 101)
    np.testing.assert_allclose(schedule.logsnr(t), speed.logsnr_at(t, 1.2), atol=2e-4)
    assert float(schedule.logsnr(0.0)) == pytest.approx(LAM_MAX, abs=1e-5)
    assert float(schedule.logsnr(1.0)) == pytest.approx(LAM_MIN, abs=1e-5)
    assert np.all(np.diff(np.asarray(schedule.logsnr(t))) < 0)
    # every step of the sampling grid carries the same share of the length (xi = 1)
    levels = speed.noise_levels(9, xi=1.0, final="min")
    lam = -2 * np.log(np.asarray(levels))
    fine = tabulate_speed(GaussianFrechet(jnp.asarray(EIG)), logsnrs=np.sort(lam)[::-1])
    del fine  # the same grid tabulated again must be valid (strictly decreasing)
    shares = np.interp(-lam, -np.asarray(speed.logsnrs), np.asarray(speed.cumulative()))
    np.testing.assert_allclose(np.diff(shares[::-1])[::-1] * 0 + np.diff(shares), -1 / 9, atol=2e-3)


def test_training_distribution_has_density_proportional_to_speed_power():
    # 1-D Gaussian, xi = 1: P(lam in [l1, l0]) = |sqrt V(l1) - sqrt V(l0)| / total,
    # by Monte Carlo through the training noise distribution of the schedule
    c = 5.0
    schedule = constant_rate_schedule(GaussianFrechet(jnp.array([c])), num_points=257)
    s, _ = FromSchedule(schedule).sample(jax.random.key(7), 40_000)
    lam = -2 * np.log(np.asarray(s, np.float64))
    edges = np.linspace(LAM_MAX, LAM_MIN, 13)
    root = np.sqrt(1 + _alpha(edges) ** 2 * (c - 1))
    expected = np.abs(np.diff(root)) / abs(root[-1] - root[0])
    counts = np.histogram(lam, bins=edges[::-1])[0][::-1]
    observed = counts / counts.sum()
    tol = 4 * np.sqrt(expected * (1 - expected) / counts.sum()) + 2e-3
    assert np.all(np.abs(observed - expected) < tol)
    # the tabulated density integrates to one and matches the bin shares
    speed = tabulate_speed(GaussianFrechet(jnp.array([c])), num_points=257)
    mids = np.linspace(LAM_MAX, LAM_MIN, 20001)
    dens = np.asarray(speed.logsnr_density(mids))
    assert abs(np.trapezoid(dens, -mids) - 1) < 1e-3


# ---- the optax objective agrees with the direct construction -----------------------------


@pytest.mark.parametrize("variable", [pytest.param("alpha", marks=pytest.mark.slow), "logsnr"])
def test_optimised_grid_agrees_with_direct_construction_xi_one(variable):
    measure = GaussianFrechet(jnp.asarray(EIG))
    n = 8
    objective = ConstantRate(measure, num_steps=n, variable=variable)
    start = PiecewiseLinear.from_schedule(EDM(), num_knots=n - 1, placement="uniform")
    assert float(objective(start)) > 0.5
    result = optimize(start, objective, num_iterations=600, learning_rate=5e-2, progress=False)
    direct = constant_rate_schedule(measure, num_points=513, variable=variable)
    assert result.final_loss < 1e-4 and float(objective(direct)) < 1e-4
    np.testing.assert_allclose(
        objective.grid_logsnrs(result.schedule), objective.grid_logsnrs(direct), atol=0.02
    )


@pytest.mark.slow
def test_optimised_grid_and_direct_construction_xi_not_one():
    # for xi != 1 the per-step cost D^(xi/2) |du|^(1-xi) is a one-point quadrature of
    # int v^xi du, so both equalise the coarse costs only up to that quadrature error
    measure = GaussianFrechet(jnp.asarray(EIG))
    objective = ConstantRate(measure, num_steps=8, xi=1.5, final="min")
    start = PiecewiseLinear.from_schedule(EDM(), num_knots=8, placement="uniform")
    result = optimize(start, objective, num_iterations=600, learning_rate=5e-2, progress=False)
    direct = constant_rate_schedule(measure, num_points=513, xi=1.5)
    assert result.final_loss < 1e-4
    assert float(objective(direct)) < 5e-3 < float(objective(EDM()))


@pytest.mark.slow
def test_objective_gradient_through_sample_measure_matches_finite_differences():
    with jax.enable_x64(True):
        x = GaussianDenoiser(jnp.asarray(EIG)).sample(jax.random.key(8), 300)
        objective = ConstantRate(SampleFrechet.from_data(x), num_steps=6)
        schedule = PiecewiseLinear.from_schedule(EDM(), num_knots=5, placement="uniform")

        def loss(logits):
            return objective(PiecewiseLinear(logits=logits, knots=schedule.knots))

        grad = jax.grad(loss)(schedule.logits)
        direction = jnp.asarray(np.random.default_rng(9).standard_normal(5))
        h = 1e-5
        fd = (loss(schedule.logits + h * direction) - loss(schedule.logits - h * direction)) / (
            2 * h
        )
        assert np.isfinite(np.asarray(grad)).all()
        np.testing.assert_allclose(float(grad @ direction), float(fd), rtol=1e-5)


def test_a_new_measure_is_one_small_class():
    class AlphaDistance(AbstractMeasure):
        name = "alpha-distance"

        def __call__(self, logsnr_a, logsnr_b):
            return (jax.nn.sigmoid(logsnr_a) ** 0.5 - jax.nn.sigmoid(logsnr_b) ** 0.5) ** 2

    schedule = constant_rate_schedule(AlphaDistance(), num_points=257)
    t = np.linspace(0, 1, 11)
    ends = _alpha([LAM_MAX, LAM_MIN])
    # atol: the MIN_SHARE = 1e-6 floor on the ~10 clean-end intervals (whose true share
    # is below it) shifts t by ~1e-5; PCHIP interpolation adds a few 1e-6
    expected = ends[0] + t * (ends[1] - ends[0])
    np.testing.assert_allclose(_alpha(schedule.logsnr(t)), expected, atol=3e-5)
    assert float(ConstantRate(AlphaDistance(), num_steps=5)(schedule)) < 1e-6


# ---- errors ---------------------------------------------------------------------------------


def test_bad_inputs_raise_errors_naming_the_argument():
    g = GaussianFrechet(jnp.asarray(EIG))
    with pytest.raises(ValueError, match="xi=-1"):
        ConstantRate(g, xi=-1.0)
    with pytest.raises(ValueError, match="num_steps"):
        ConstantRate(g, num_steps=2)
    with pytest.raises(ValueError, match="variable"):
        tabulate_speed(g, variable="sigma")
    with pytest.raises(ValueError, match="measure"):
        tabulate_speed(lambda a, b: 0.0)
    with pytest.raises(ValueError, match="logsnrs"):
        tabulate_speed(g, logsnrs=jnp.array([1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="num_points"):
        tabulate_speed(g, num_points=1)
    with pytest.raises(ValueError, match="all zero"):
        Speed(jnp.array([1.0, 0.0]), jnp.array([0.0]))
    with pytest.raises(ValueError, match="method"):
        SampleFrechet.from_data(np.zeros((10, 2)), method="sinkhorn")
    with pytest.raises(ValueError, match="num_samples"):
        SampleFrechet.from_data(np.zeros((10, 2)), num_samples=11)
    with pytest.raises(ValueError, match="input"):
        DataPrediction.from_data(GaussianDenoiser(jnp.ones(2)), np.zeros((10, 2)), input="x")
    with pytest.raises(ValueError, match="weights"):
        Combined((g,), jnp.array([-1.0]))
    with pytest.raises(ValueError, match="family"):
        tabulate_speed(g, num_points=9).schedule(family="edm")
