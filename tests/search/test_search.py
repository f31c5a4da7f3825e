import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid, step_grid
from schedopt.models import GaussianDenoiser
from schedopt.schedules import EDM, grid
from schedopt.search import (
    ays_bound,
    ays_single_eigenvalue_optimum,
    ays_step_costs,
    dp_search,
    dp_select,
    gaussian_step_costs,
    optimize_ays,
    schedule_from_sigmas,
    teacher_levels,
    trajectory_step_costs,
)


def brute_force(cost, num_points):
    m = cost.shape[0]
    best, best_path = np.inf, None
    for inner in itertools.combinations(range(1, m - 1), num_points - 2):
        path = (0, *inner, m - 1)
        total = sum(cost[a, b] for a, b in itertools.pairwise(path))
        if total < best:
            best, best_path = total, path
    return np.asarray(best_path), best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("num_points", [2, 3, 4, 6])
def test_dp_matches_brute_force_on_random_costs(seed, num_points):
    cost = np.random.default_rng(seed).uniform(0, 1, (8, 8))
    path, value = dp_select(cost, num_points)
    ref_path, ref_value = brute_force(cost, num_points)
    assert value == pytest.approx(ref_value)
    np.testing.assert_array_equal(path, ref_path)


def test_dp_matches_brute_force_on_gaussian_kl_costs():
    levels = teacher_levels(0.002, 80.0, 9)
    cost = gaussian_step_costs(Spectrum.digits(), levels, "euler")
    for n in (3, 4, 5):
        path, value = dp_select(cost, n)
        assert value == pytest.approx(brute_force(cost, n)[1], rel=1e-10)


def test_gaussian_step_cost_is_the_exact_one_step_kl():
    spectrum = Spectrum([0.3, 1.0, 4.0])
    levels = [5.0, 1.0, 0.2]
    for solver in ("euler", "heun"):
        cost = gaussian_step_costs(spectrum, levels, solver)
        exact = gaussian_kl(spectrum, sigma_grid([5.0, 0.2]), solver, init="exact")
        assert cost[0, 2] == pytest.approx(float(exact), rel=1e-5)
        assert np.isinf(cost[2, 0]) and np.isinf(cost[1, 1])


def test_ays_costs_are_additive_and_dp_finds_bound_optimum():
    spectrum = Spectrum([0.5, 2.0])
    levels = teacher_levels(0.01, 20.0, 10)
    cost = ays_step_costs(spectrum, levels)
    result = dp_search(levels, cost, 4)
    # the DP cost plus the common last step to 0 is the bound of the full grid
    last = float(ays_bound(spectrum, jnp.array([0.01, 0.0])))
    assert float(ays_bound(spectrum, result.sigmas)) == pytest.approx(result.cost + last, rel=1e-5)
    assert result.cost == pytest.approx(brute_force(cost, 4)[1], rel=1e-10)


def test_ays_bound_upper_bounds_the_exact_kl_for_the_matching_sampler():
    # the frozen-score SDE is not a schedopt sampler, but the bound must be positive and
    # shrink when the grid is refined (it is O(1/N))
    spectrum = Spectrum.digits()
    coarse = ays_bound(spectrum, grid(EDM(), 5))
    fine = ays_bound(spectrum, grid(EDM(), 40))
    assert 0 < float(fine) < float(coarse)


def test_optimize_ays_lowers_bound_and_matches_single_eigenvalue_optimum():
    spectrum = Spectrum([1.0])
    result = optimize_ays(spectrum, 6, 0.002, 80.0, num_iterations=800, learning_rate=0.05)
    assert result.cost < float(ays_bound(spectrum, grid(EDM(), 6))) * 0.99
    exact = ays_single_eigenvalue_optimum(1.0, 6, 0.002, 80.0)
    assert result.cost == pytest.approx(float(ays_bound(spectrum, exact)), rel=1e-3)
    np.testing.assert_allclose(result.sigmas[:-2], exact[:-2], rtol=0.05)


def test_optimize_ays_close_to_dp_on_a_fine_grid():
    spectrum = Spectrum.digits()
    levels = teacher_levels(0.002, 80.0, 200)
    dp = dp_search(levels, ays_step_costs(spectrum, levels), 5)
    result = optimize_ays(spectrum, 5, num_iterations=500)
    dp_total = float(ays_bound(spectrum, dp.sigmas))
    assert result.cost <= dp_total * 1.01


def test_optimize_ays_reuses_its_compilation(monkeypatch):
    from schedopt.search import ays

    bound, calls = ays.ays_bound, []

    def counted(spectrum, sigmas):
        calls.append(1)  # a Python side effect: runs on every trace and every eager call
        return bound(spectrum, sigmas)

    monkeypatch.setattr(ays, "ays_bound", counted)
    spectrum = Spectrum([0.5, 2.0])
    first = optimize_ays(spectrum, 5, num_iterations=7, learning_rate=0.0123)
    after_first = len(calls)
    again = optimize_ays(spectrum, 5, num_iterations=7, learning_rate=0.0123)
    assert after_first > 1 and len(calls) == after_first + 1  # the final eager bound only
    np.testing.assert_array_equal(first.sigmas, again.sigmas)


def test_schedule_from_sigmas_reproduces_the_grid_for_samplers_and_kl():
    sigmas = [80.0, 3.0, 0.5, 0.002, 0.0]
    schedule = schedule_from_sigmas(sigmas)
    np.testing.assert_allclose(np.asarray(grid(schedule, 4)), sigmas, rtol=1e-5)
    spectrum = Spectrum.digits()
    a = gaussian_kl(spectrum, step_grid(schedule, 4), "heun")
    b = gaussian_kl(spectrum, sigma_grid(sigmas), "heun")
    assert float(a) == pytest.approx(float(b), rel=1e-4)


def test_trajectory_costs_vanish_for_a_perfect_step_and_grow_with_step_size():
    denoiser = GaussianDenoiser(jnp.array([0.5, 2.0]))
    y0 = 10.0 * jnp.ones((4, 2))
    cost = trajectory_step_costs(denoiser, [10.0, 5.0, 1.0, 0.1], y0, "heun")
    assert cost[0, 1] < cost[0, 2] < cost[0, 3]
    assert np.all(np.isfinite(cost[np.triu_indices(4, 1)]))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dp_select(np.zeros((3, 3)), 4), "num_points"),
        (lambda: dp_select(np.zeros((3, 2)), 2), "cost"),
        (lambda: dp_search([1.0, 2.0], np.zeros((2, 2)), 2), "teacher_sigmas"),
        (lambda: optimize_ays(Spectrum([1.0]), 0), "num_steps"),
        (lambda: optimize_ays(Spectrum([1.0]), 4, sigma_min=5.0, sigma_max=1.0), "sigma_min"),
        (lambda: gaussian_step_costs(Spectrum([1.0]), [2.0, 1.0], "euler-maruyama"), "solver"),
        (lambda: trajectory_step_costs(None, [2.0, 1.0], jnp.ones((1, 1)), "rk4"), "solver"),
    ],
)
def test_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_dp_with_free_ends_is_the_brute_force_optimum():
    import itertools

    from schedopt.search import dp_select

    rng = np.random.default_rng(4)
    m, n = 7, 3
    cost = rng.uniform(0, 1, (m, m))
    start, end = rng.uniform(0, 1, m), rng.uniform(0, 1, m)
    best = min(
        (start[p[0]] + sum(cost[a, b] for a, b in zip(p[:-1], p[1:], strict=True)) + end[p[-1]], p)
        for p in itertools.combinations(range(m), n)
    )
    indices, total = dp_select(cost, n, start_cost=start, end_cost=end)
    assert tuple(indices) == best[1]
    np.testing.assert_allclose(total, best[0])
    fixed, _ = dp_select(cost, n)
    assert fixed[0] == 0 and fixed[-1] == m - 1


def test_range_costs_are_the_kls_of_the_start_and_of_the_last_step():
    from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid
    from schedopt.search import gaussian_range_costs, initial_mismatch

    spectrum = Spectrum([0.05, 0.5, 2.0], mean=[0.3, -1.0, 0.5])
    levels = np.geomspace(80.0, 0.01, 6)
    start, end = gaussian_range_costs(spectrum, levels, init="ve")
    for s, a, b in zip(levels, start, end, strict=True):
        np.testing.assert_allclose(b, gaussian_kl(spectrum, sigma_grid([s, 0.0])), rtol=1e-5)
        np.testing.assert_allclose(a, initial_mismatch(spectrum, s), rtol=1e-6)
    assert np.all(np.diff(start) > 0) and np.all(np.diff(end) < 0)  # starting low costs


def test_ays_with_free_ends_stays_in_its_bounds_and_lowers_its_bound():
    from schedopt.gaussian import Spectrum
    from schedopt.search import ays_bound, initial_mismatch, optimize_ays

    spectrum = Spectrum([0.01, 0.3, 2.0])
    fixed = optimize_ays(spectrum, 5, num_iterations=300)
    free = optimize_ays(spectrum, 5, num_iterations=300, bounds=(0.002, 160.0))
    levels = free.sigmas[:-1]
    assert 0.002 < levels[-1] and levels[0] < 160.0 and np.all(np.diff(levels) < 0)
    with_start = float(ays_bound(spectrum, fixed.sigmas) + initial_mismatch(spectrum, 80.0))
    assert free.cost < with_start


@pytest.mark.parametrize("solver", ["dpmpp-2m", "dpmpp-3m"])
def test_dmn_coefficients_are_the_outputs_sensitivity_to_each_evaluation(solver):
    """c_k = d u_{M-1} / d D_k through the solver's own recursion (u = y / s)."""
    from schedopt import _multistep
    from schedopt.search.dmn import _coefficients

    with jax.enable_x64(True):
        levels = jnp.asarray(np.geomspace(80.0, 0.01, 7))
        order = 2 if solver == "dpmpp-2m" else 3
        plan = _multistep.dpmpp_plan(levels, 7, order)

        def output(errors):
            y, history = jnp.zeros(()), tuple(jnp.zeros(()) for _ in range(order - 1))
            for i in range(6):
                y, history = _multistep.linear_update(
                    y, errors[i], history, plan.ratio[i], plan.weights[i]
                )
            return y / levels[-1]

        sensitivity = jax.grad(output)(jnp.zeros(7))
        np.testing.assert_allclose(_coefficients(levels, 7, solver), sensitivity, rtol=1e-10)


def test_optimize_dmn_lowers_its_bound_from_logsnr_uniform():
    from schedopt.search import dmn_bound, optimize_dmn

    start = np.concatenate([np.geomspace(80.0, 0.002, 6), [0.0]])
    result = optimize_dmn(6, "unipc", num_iterations=300)
    assert result.cost < 0.9 * float(dmn_bound(start, "unipc"))
    assert result.sigmas[0] == 80.0 and np.all(np.diff(result.sigmas) < 0)
    with pytest.raises(ValueError, match="solver"):
        optimize_dmn(6, "euler")
