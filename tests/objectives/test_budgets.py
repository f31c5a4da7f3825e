"""One fit for every NFE: a shared spacing, a range per budget, a summed objective."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.gaussian import Spectrum
from schedopt.objectives import BudgetRanges, GaussianKL, SumOverBudgets
from schedopt.optimize import optimize
from schedopt.schedules import EDM, MonotoneCubic, grid

SPECTRUM = Spectrum([0.01, 0.3, 2.0])
STEPS = (3, 5, 8)


def _objective(reduction="log"):
    kls = tuple(GaussianKL(SPECTRUM, num_steps=n, solver="dpmpp-2m", init="ve") for n in STEPS)
    return SumOverBudgets(kls, reduction)


def test_the_sum_is_over_each_budgets_own_schedule():
    ranges = BudgetRanges.from_schedule(
        MonotoneCubic.from_schedule(EDM(), 8), STEPS, (0.002, 160.0), (0.002, 80.0)
    )
    ranges = eqx.tree_at(lambda r: r.range_logits, ranges, ranges.range_logits.at[1, 0].add(1.0))
    terms = _objective().terms(ranges, None)
    for i, n in enumerate(STEPS):
        expected = GaussianKL(SPECTRUM, num_steps=n, solver="dpmpp-2m", init="ve")(ranges.at(i))
        np.testing.assert_allclose(terms[i], expected, rtol=1e-6)
    np.testing.assert_allclose(_objective()(ranges, None), jnp.sum(jnp.log(terms)), rtol=1e-6)
    grad = jax.grad(lambda r: _objective()(r, None))(ranges)
    assert bool(jnp.all(jnp.any(grad.range_logits != 0, axis=1)))  # every budget's range
    assert float(jnp.max(jnp.abs(grad.base.logits))) > 0  # the shared spacing


@pytest.mark.slow
def test_one_fit_improves_every_budget():
    start = BudgetRanges.from_schedule(
        MonotoneCubic.from_schedule(EDM(), 8), STEPS, (0.002, 160.0), (0.002, 80.0)
    )
    result = optimize(start, _objective(), num_iterations=300, progress=False)
    before, after = _objective().terms(start, None), _objective().terms(result.schedule, None)
    assert bool(jnp.all(after < 0.8 * before)), (before, after)
    levels = grid(result.schedule.for_steps(5), 5)
    assert bool(jnp.all(jnp.diff(levels) < 0))


def test_for_steps_takes_the_nearest_budget_in_log_steps():
    ranges = BudgetRanges.from_schedule(EDM(), (3, 10))
    ranges = eqx.tree_at(lambda r: r.range_logits, ranges, ranges.range_logits.at[1].add(0.3))
    np.testing.assert_array_equal(ranges.for_steps(10).range_logits, ranges.range_logits[1])
    np.testing.assert_array_equal(ranges.for_steps(5).range_logits, ranges.range_logits[0])
    np.testing.assert_array_equal(ranges.for_steps(6).range_logits, ranges.range_logits[1])


def test_bad_input_names_the_argument():
    ranges = BudgetRanges.from_schedule(EDM(), STEPS)
    swapped = SumOverBudgets(tuple(GaussianKL(SPECTRUM, num_steps=n) for n in (5, 3, 8)))
    with pytest.raises(ValueError, match="budgets' order"):
        swapped(ranges, None)
    with pytest.raises(ValueError, match="objectives"):
        SumOverBudgets(())
    with pytest.raises(ValueError, match="reduction"):
        SumOverBudgets(_objective().objectives, "max")
    with pytest.raises(ValueError, match="range_logits"):
        BudgetRanges(EDM(), jnp.zeros((2, 3)), (3,), (0.002, 80.0))
