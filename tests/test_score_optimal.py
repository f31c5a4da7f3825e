"""The costs of Williams et al. (against Gaussian closed forms, a finite-difference reference
and each other), Algorithm 1 (fixed points and convergence), the rho fit and Algorithm 2's
update."""

import doctest
import importlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.data import GaussianMixture
from schedopt.models import GaussianDenoiser, GaussianMixtureDenoiser
from schedopt.schedules import EDM, grid
from schedopt.score_optimal import (
    CorrectorCost,
    OnlineEqualCost,
    PredictorCost,
    blend,
    coarsen_costs,
    cost_spread,
    cumulative_root_cost,
    edm_grid,
    equal_cost_noise_levels,
    equal_cost_update,
    fit_edm_rho,
    gaussian_corrector_length,
    gaussian_interval_cost,
    gaussian_local_cost,
    make_cost,
    refined_update,
    schedule_from_noise_levels,
    subdivide,
)

EIGENVALUES = np.array([0.05, 0.4, 2.5])
ROTATION = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))[0]


def _rotated_gaussian():
    cov = (ROTATION * EIGENVALUES) @ ROTATION.T
    return GaussianDenoiser.from_covariance(cov, mean=jnp.array([0.5, -1.0, 2.0]))


@eqx.filter_jit
def _per_sample(cost, denoiser, x0, s, s_next, key):
    key_eps, key_probe = jax.random.split(key)  # the draw interval_costs makes
    eps = jax.random.normal(key_eps, x0.shape, x0.dtype)
    return cost.pointwise(denoiser, x0 + s * eps, s, s_next, key_probe)


def _mean_and_se(cost, denoiser, x0, s, s_next, key):
    """The estimator's value on the draw ``interval_costs`` makes, and its standard error."""
    s, s_next = jnp.asarray(s, x0.dtype), jnp.asarray(s_next, x0.dtype)  # traced: one compile
    per = np.asarray(_per_sample(cost, denoiser, x0, s, s_next, key), np.float64)
    return per.mean(), per.std() / np.sqrt(per.size)


# ---- costs against closed forms -----------------------------------------------------------


def test_corrector_cost_matches_the_gaussian_closed_form():
    den = _rotated_gaussian()
    x0 = den.sample(jax.random.key(0), 20_000)
    for velocity in ("sigma", "one"):
        cost = CorrectorCost(velocity=velocity)
        for s, s_next in [(20.0, 8.0), (1.0, 0.6), (0.3, 0.2), (0.05, 0.04), (0.5, 0.9)]:
            mean, se = _mean_and_se(cost, den, x0, s, s_next, jax.random.key(1))
            exact = float(gaussian_interval_cost(EIGENVALUES, s, s_next, "corrector", velocity))
            assert abs(mean - exact) < 4 * se, (velocity, s, s_next, mean, exact, se)
    batch = cost.interval_costs(den, x0, jnp.array([s, s_next]), jax.random.key(1))
    np.testing.assert_allclose(batch[0], mean, rtol=1e-4)


def test_closed_forms_have_the_stated_local_expansions():
    # L(s, s + h) / h^order -> delta(s): the finite closed forms against the local ones
    # (centred in h, which cancels the h^(order + 1) term; float32 limits how small h can be)
    for cost, order in (("corrector", 2), ("predictor", 4)):
        for s in (0.02, 0.3, 1.0, 7.0):
            h = 1e-2 * s
            up = gaussian_interval_cost(EIGENVALUES, s, s + h, cost)
            down = gaussian_interval_cost(EIGENVALUES, s, s - h, cost)
            local = gaussian_local_cost(EIGENVALUES, s, cost)
            np.testing.assert_allclose(0.5 * (up + down) / h**order, local, rtol=5e-3)
            assert abs(float(up / h**order / local) - 1) > 1e-3  # the odd term is there
    # derived: delta(s) = 4 s^4 / (c + s^2)^3 per direction for v = s
    s = np.array([0.1, 1.0, 3.0])
    expected = sum(4 * s**4 / (c + s**2) ** 3 for c in EIGENVALUES)
    np.testing.assert_allclose(gaussian_local_cost(EIGENVALUES, s), expected, rtol=1e-6)


def test_corrector_local_cost_matches_delta_of_the_notes():
    den = _rotated_gaussian()
    x0 = den.sample(jax.random.key(2), 20_000)
    levels = jnp.array([0.02, 0.2, 0.7, 2.0, 10.0])
    estimate = CorrectorCost().local_cost(den, x0, levels, jax.random.key(3))
    exact = gaussian_local_cost(EIGENVALUES, levels)
    # ||d score / ds||^2 is a quadratic form in y: relative MC error ~ sqrt(2 / n) per direction
    np.testing.assert_allclose(estimate, exact, rtol=0.04)


def test_predictor_cost_matches_the_gaussian_closed_form():
    den = _rotated_gaussian()
    x0 = den.sample(jax.random.key(4), 4000)
    for s, s_next in [(8.0, 5.0), (1.0, 0.7), (0.2, 0.15)]:
        mean, se = _mean_and_se(PredictorCost(), den, x0, s, s_next, jax.random.key(5))
        exact = float(gaussian_interval_cost(EIGENVALUES, s, s_next, "predictor"))
        assert abs(mean - exact) < 4 * se, (s, s_next, mean, exact, se)


def test_predictor_cost_is_fourth_order_for_an_exact_denoiser():
    den = _rotated_gaussian()
    x0 = den.sample(jax.random.key(6), 4000)
    levels = jnp.array([0.3, 1.0, 3.0])
    estimate = PredictorCost().local_cost(den, x0, levels, jax.random.key(7), relative_step=0.05)
    np.testing.assert_allclose(
        estimate, gaussian_local_cost(EIGENVALUES, levels, "predictor"), rtol=0.06
    )
    # halving the step divides the cost by 2^4 (not 2^2)
    costs = [
        float(
            PredictorCost().interval_costs(den, x0, jnp.array([1.0, 1.0 - h]), jax.random.key(8))[0]
        )
        for h in (0.1, 0.05)
    ]
    assert 13.0 < costs[0] / costs[1] < 19.0, costs


def test_predictor_cost_matches_a_finite_difference_reference_on_a_mixture(two_mode_mixture):
    # change of variables on a fine grid with numerical derivatives, independent of autodiff
    mix = two_mode_mixture
    w, m, c = (
        np.asarray(mix.weights),
        np.asarray(mix.means)[:, 0],
        np.asarray(mix.covariances)[:, 0, 0],
    )
    s, s_next = 0.5, 0.4

    def score(y, level):
        var = c + level**2
        comp = w * np.exp(-0.5 * (y[:, None] - m) ** 2 / var) / np.sqrt(2 * np.pi * var)
        return (comp * (m - y[:, None]) / var).sum(1) / comp.sum(1), comp.sum(1)

    y = np.linspace(-5.0, 5.0, 200_001)
    dy = y[1] - y[0]
    score_s, density = score(y, s)
    step = y - (s_next - s) * s * score_s  # Euler step with D = y + s^2 score
    d1 = np.gradient(step, dy)
    d2 = np.gradient(d1, dy)
    pushed = (score_s - d2 / d1) / d1  # d/dF log q(F y)
    target = score(step, s_next)[0]
    reference = s_next**2 * np.sum(density * (target - pushed) ** 2) * dy
    den = GaussianMixtureDenoiser.from_mixture(mix)
    x0 = mix.sample(jax.random.key(9), 10_000)
    mean, se = _mean_and_se(PredictorCost(), den, x0, s, s_next, jax.random.key(10))
    assert abs(mean - reference) < 4 * se, (mean, reference, se)
    # and the corrector cost from the same densities
    corrector = s_next**2 * np.sum(density * (score(y, s_next)[0] - score_s) ** 2) * dy
    mean, se = _mean_and_se(CorrectorCost(), den, x0, s, s_next, jax.random.key(10))
    assert abs(mean - corrector) < 4 * se, (mean, corrector, se)


def test_hutchinson_predictor_agrees_with_the_exact_jacobian_on_a_mixture():
    # unbiased over the probes: the means agree within Monte Carlo error
    mix = GaussianMixture(
        jnp.array([0.5, 0.5]),
        jnp.array([[-1.0, 0.0], [1.0, 0.5]]),
        jnp.array([[[0.1, 0.03], [0.03, 0.05]], [[0.05, 0.0], [0.0, 0.2]]]),
    )
    den = GaussianMixtureDenoiser.from_mixture(mix)
    x0 = mix.sample(jax.random.key(13), 3000)
    exact, se_exact = _mean_and_se(PredictorCost(), den, x0, 0.6, 0.5, jax.random.key(14))
    hutch, se_hutch = _mean_and_se(
        PredictorCost(trace="hutchinson"), den, x0, 0.6, 0.5, jax.random.key(14)
    )
    assert abs(hutch - exact) < 4 * np.hypot(se_exact, se_hutch), (hutch, exact)


@pytest.mark.slow
def test_hutchinson_predictor_on_a_gaussian_only_truncates_the_series():
    # a constant Jacobian makes every probe exact: the difference is the series' truncation
    den = _rotated_gaussian()
    x0 = den.sample(jax.random.key(11), 200)
    levels = jnp.array([3.0, 2.0, 1.4])
    exact = PredictorCost().interval_costs(den, x0, levels, jax.random.key(12))
    for terms, rtol in ((12, 2e-3), (3, None)):
        hutch = PredictorCost(trace="hutchinson", num_terms=terms).interval_costs(
            den, x0, levels, jax.random.key(12)
        )
        if rtol is None:  # too few terms: visibly off
            assert float(jnp.max(jnp.abs(hutch / exact - 1))) > 1e-2
        else:
            np.testing.assert_allclose(hutch, exact, rtol=rtol)


def test_substeps_give_the_length_of_the_interval():
    # one long jump is not local; one-sided sub-steps converge at first order, symmetric
    # ones at second order, to the length int sqrt(delta) of the interval
    den = GaussianDenoiser(jnp.ones(1))
    x0 = den.sample(jax.random.key(15), 4000)
    levels = jnp.array([2.0, 0.1])

    def length(sub, symmetric):
        cost = CorrectorCost().interval_costs(den, x0, levels, jax.random.key(16), sub, symmetric)
        return float(jnp.sqrt(cost[0]))

    fine = length(64, True)
    one_sided = [abs(length(sub, False) / fine - 1) for sub in (1, 4, 16)]
    symmetric = [abs(length(sub, True) / fine - 1) for sub in (4, 16)]
    assert one_sided[0] > 0.5 and 3 < one_sided[1] / one_sided[2] < 5, one_sided
    assert symmetric[0] / symmetric[1] > 8 and symmetric[0] < one_sided[1] / 5, symmetric
    exact = float(gaussian_corrector_length(1.0, 2.0) - gaussian_corrector_length(1.0, 0.1))
    assert abs(fine / exact - 1) < 0.03  # Monte Carlo error of 4000 samples in 1-D


def test_costs_reject_bad_input():
    den = GaussianDenoiser(jnp.ones(1))
    x0 = jnp.zeros((4, 1))
    with pytest.raises(ValueError, match="noise_levels"):
        CorrectorCost().interval_costs(den, x0, jnp.array([1.0, -1.0]), jax.random.key(0))
    with pytest.raises(ValueError, match="noise_levels"):
        CorrectorCost().interval_costs(den, x0, jnp.array([1.0]), jax.random.key(0))
    with pytest.raises(ValueError, match="x0"):
        CorrectorCost().interval_costs(den, jnp.zeros(4), jnp.array([2.0, 1.0]), jax.random.key(0))
    with pytest.raises(ValueError, match="velocity"):
        CorrectorCost(velocity="sigma2")
    with pytest.raises(ValueError, match="trace"):
        PredictorCost(trace="approx")
    with pytest.raises(ValueError, match="cost"):
        make_cost("transport")
    with pytest.raises(ValueError, match="num_substeps"):
        CorrectorCost().interval_costs(den, x0, jnp.array([2.0, 1.0]), jax.random.key(0), 0)


# ---- Algorithm 1 ---------------------------------------------------------------------------


def test_equal_costs_are_a_fixed_point_and_ends_are_kept():
    x = jnp.array([0.0, 0.1, 0.5, 0.6, 2.0])
    np.testing.assert_allclose(equal_cost_update(x, jnp.full(4, 3.0)), x, atol=1e-6)
    out = equal_cost_update(x[::-1], jnp.array([1.0, 9.0, 0.5, 2.0]), num_points=9)
    assert out.shape == (9,) and out[0] == 2.0 and out[-1] == 0.0
    assert bool(jnp.all(jnp.diff(out) < 0))


def _geodesic_costs(x):
    length = x**3 + x  # any increasing function: costs are squared length increments
    return jnp.diff(length) ** 2


def _real_cube_root(v):
    """The real root x of x^3 + x = v."""
    roots = np.roots([1.0, 0.0, 1.0, -v])
    return roots[np.abs(roots.imag) < 1e-9].real[0]


def test_one_update_equalises_geodesic_costs_and_iterates_converge():
    x = jnp.linspace(0.0, 1.5, 41)
    new = equal_cost_update(x, _geodesic_costs(x))
    # exact solution: x^3 + x = k / 40 * (1.5^3 + 1.5)
    exact = np.array([_real_cube_root(v) for v in np.linspace(0.0, 1.5**3 + 1.5, 41)])
    assert np.max(np.abs(np.asarray(new) - exact)) < 2e-3
    for _ in range(4):
        new = equal_cost_update(new, _geodesic_costs(new))
    assert np.max(np.abs(np.asarray(new) - exact)) < 1e-5
    assert float(cost_spread(_geodesic_costs(new))) < 1e-4


def test_order_four_costs_need_their_own_root():
    # costs ~ h^4: with order=4 one update equalises them, with the square root it does not
    x = jnp.linspace(0.0, 1.0, 21) ** 2
    costs = jnp.diff(x) ** 4
    np.testing.assert_allclose(
        equal_cost_update(x, costs, order=4), jnp.linspace(0, 1, 21), atol=1e-5
    )
    assert np.max(np.abs(np.asarray(equal_cost_update(x, costs)) - np.linspace(0, 1, 21))) > 0.05


def test_iterating_algorithm_1_converges_to_the_equal_cost_grid():
    den = GaussianDenoiser(jnp.ones(1))
    x0 = den.sample(jax.random.key(0), 2048)
    for num_points in (6, 12):
        result = equal_cost_noise_levels(
            CorrectorCost(),
            den,
            x0,
            edm_grid(0.002, 80.0, num_points, 7.0),
            jax.random.key(1),
            num_iterations=6,
        )
        spreads, changes = result.spreads, result.changes
        assert spreads[0] > 0.5 and spreads[-1] < 1e-3, spreads
        assert changes[-1] < 1e-3 and changes[3] < 0.05 * changes[1], changes  # geometric
        np.testing.assert_allclose(result.noise_levels[[0, -1]], [80.0, 0.002], rtol=1e-5)
        # equal increments of the closed-form length (up to Monte Carlo and quadrature)
        steps = -np.diff(np.asarray(gaussian_corrector_length(1.0, result.noise_levels)))
        assert np.std(steps) / np.mean(steps) < 0.03, steps


def test_refined_update_resamples_a_coarse_grid_accurately():
    # geodesic costs on 5 sub-steps of a 5-point grid: with the sub-steps one update is
    # nearly exact; the plain update, interpolating between 5 points, is not
    x = jnp.linspace(0.0, 1.5, 5)
    fine = subdivide(x, 5)
    levels = np.linspace(0.0, 1.5**3 + 1.5, 5)
    exact = np.array([_real_cube_root(v) for v in levels])
    refined = refined_update(x, _geodesic_costs(fine), 5)
    plain = equal_cost_update(x, coarsen_costs(_geodesic_costs(fine), 5))
    err_refined = np.max(np.abs(np.asarray(refined) - exact))
    err_plain = np.max(np.abs(np.asarray(plain) - exact))
    assert err_refined < 5e-3 and err_plain > 4 * err_refined, (err_refined, err_plain)


def test_blend_and_spread():
    np.testing.assert_allclose(blend(jnp.zeros(3), jnp.ones(3), 0.25), 0.25)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="gamma"):
            blend(jnp.zeros(3), jnp.ones(3), bad)
    np.testing.assert_allclose(cumulative_root_cost(jnp.array([4.0, 16.0]), order=2), [0, 2, 6])
    np.testing.assert_allclose(cost_spread(jnp.array([1.0, 16.0]), order=4), 1 / 3, rtol=1e-6)


def test_algorithm_1_rejects_bad_input():
    with pytest.raises(ValueError, match="grid"):
        equal_cost_update(jnp.array([0.0, 2.0, 1.0]), jnp.ones(2))
    with pytest.raises(ValueError, match="costs"):
        equal_cost_update(jnp.array([0.0, 1.0, 2.0]), jnp.ones(3))
    with pytest.raises(ValueError, match="costs"):
        equal_cost_update(jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="costs"):
        equal_cost_update(jnp.array([0.0, 1.0, 2.0]), jnp.zeros(2))
    with pytest.raises(ValueError, match="order"):
        equal_cost_update(jnp.array([0.0, 1.0, 2.0]), jnp.ones(2), order=0)
    with pytest.raises(ValueError, match="num_points"):
        equal_cost_update(jnp.array([0.0, 1.0, 2.0]), jnp.ones(2), num_points=1)


def test_equal_cost_update_is_differentiable():
    x = jnp.linspace(0.0, 1.0, 6)
    costs = jnp.array([1.0, 2.0, 3.0, 2.0, 1.0])

    def f(c):
        return jnp.sum(equal_cost_update(x, c) ** 2)

    f = jax.jit(f)
    grad = jax.grad(f)(costs)
    eps = 1e-3
    for i in range(5):
        e = jnp.zeros(5).at[i].set(eps)
        fd = (f(costs + e) - f(costs - e)) / (2 * eps)
        np.testing.assert_allclose(grad[i], fd, rtol=2e-2, atol=1e-4)


# ---- schedules from grids, and the rho fit --------------------------------------------------


@pytest.mark.parametrize("rho", [2.0, 7.0, 100.0])
def test_fit_edm_rho_recovers_rho(rho):
    fit = fit_edm_rho(np.asarray(edm_grid(0.002, 80.0, 30, rho), np.float64))
    np.testing.assert_allclose(fit.rho, rho, rtol=1e-3)
    assert fit.rms_log_error < 1e-4


def test_fit_edm_rho_rejects_bad_grids():
    with pytest.raises(ValueError, match="noise_levels"):
        fit_edm_rho(np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match="noise_levels"):
        fit_edm_rho(np.array([0.1, 0.5, 1.0]))


def test_schedule_from_noise_levels_reproduces_the_grid():
    levels = np.asarray(edm_grid(0.002, 80.0, 12, 5.0), np.float64)
    schedule = schedule_from_noise_levels(levels)
    np.testing.assert_allclose(grid(schedule, 12)[:-1], levels, rtol=1e-4)


# ---- Algorithm 2 ----------------------------------------------------------------------------


def test_online_update_contracts_to_the_algorithm_1_fixed_point():
    den = GaussianDenoiser(jnp.ones(1))
    x0 = den.sample(jax.random.key(0), 1024)
    online = OnlineEqualCost(CorrectorCost(), EDM(), num_points=10, gamma=0.3, num_substeps=8)
    update = jax.jit(lambda t: online.update(t, den, x0, jax.random.key(1)))
    times = online.initial_times()
    spreads = []
    for _ in range(25):
        times, costs = update(times)
        spreads.append(float(cost_spread(costs)))
    assert spreads[-1] < 0.02 * spreads[0], spreads
    ratios = np.asarray(spreads[6:20]) / np.asarray(spreads[5:19])
    assert np.all(ratios < 0.78), ratios  # contracts about like 1 - gamma
    assert float(times[0]) == 1.0 and float(times[-1]) == 0.0
    # the same grid as iterating Algorithm 1 directly (sub-steps in log s instead of t)
    direct = equal_cost_noise_levels(
        CorrectorCost(),
        den,
        x0,
        EDM().noise_level(online.initial_times()),
        jax.random.key(1),
        num_iterations=8,
    )
    np.testing.assert_allclose(
        np.log(np.asarray(EDM().noise_level(times))), np.log(direct.noise_levels), atol=5e-3
    )


def test_online_rejects_bad_settings():
    with pytest.raises(ValueError, match="gamma"):
        OnlineEqualCost(CorrectorCost(), EDM(), gamma=0.0)
    with pytest.raises(ValueError, match="num_points"):
        OnlineEqualCost(CorrectorCost(), EDM(), num_points=2)
    with pytest.raises(ValueError, match="cost"):
        OnlineEqualCost("corrector", EDM())
    with pytest.raises(ValueError, match="times"):
        OnlineEqualCost(CorrectorCost(), EDM(), num_points=5).hook(np.zeros((8, 1)), np.ones(3))


# ---- docstring examples -----------------------------------------------------------------------


@pytest.mark.parametrize("module", ["costs", "equal_cost", "gaussian", "online", "table"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"schedopt.score_optimal.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
