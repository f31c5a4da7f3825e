"""The objective interface, checked over a table of every objective: a small instance of
each is jit-able (``eqx.filter_jit``, the objective an argument), has a finite value and
a finite, non-zero gradient with respect to a learnable schedule's parameters, and
describes itself as JSON."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import schedopt.objectives as objectives
from schedopt.constant_rate import GaussianFrechet
from schedopt.data import GaussianMixture
from schedopt.gaussian import Spectrum
from schedopt.models import GaussianMixtureDenoiser
from schedopt.objectives import (
    MMD,
    AbstractObjective,
    ConstantRate,
    Frechet,
    GaussianKL,
    ScoreWork,
    SlicedWasserstein,
    SumOverBudgets,
    TrajectoryMatching,
)
from schedopt.objectives.budgets import BudgetRanges
from schedopt.sampling import ODESampler
from schedopt.schedules import EDM, MonotoneCubic
from schedopt.score_optimal import CorrectorCost, CostTable
from schedopt.search import AYSBound, DMNBound

#: A 2-D two-mode mixture: its exact denoiser is the oracle of the sample-based objectives.
MIXTURE = GaussianMixture(
    jnp.array([0.4, 0.6]),
    jnp.array([[-1.0, 0.5], [1.0, -0.5]]),
    jnp.array([[[0.05, 0.0], [0.0, 0.1]], [[0.1, 0.02], [0.02, 0.05]]]),
)
DENOISER = GaussianMixtureDenoiser.from_mixture(MIXTURE)
DATA = MIXTURE.sample(jax.random.key(1), 64)
SAMPLER = ODESampler(3, "euler")


def _score_work():
    table = CostTable.estimate(CorrectorCost(), DENOISER, DATA, jax.random.key(2), num_intervals=16)
    return ScoreWork(table, num_quadrature=64)


#: name -> (objective factory, schedule factory); small sizes, so that each compiles fast.
OBJECTIVES = {
    "gaussian-kl": (lambda: GaussianKL(Spectrum([0.3, 1.0, 2.0]), num_steps=4), None),
    "gaussian-kl-heun-reverse": (
        lambda: GaussianKL(Spectrum([0.5, 2.0]), num_steps=3, solver="heun", direction="reverse"),
        None,
    ),
    "constant-rate": (lambda: ConstantRate(GaussianFrechet(jnp.array([0.05, 0.5, 2.0])), 4), None),
    "score-work": (_score_work, None),
    "trajectory": (
        lambda: TrajectoryMatching(DENOISER, SAMPLER, num_pairs=8, reference_steps=8),
        None,
    ),
    "mmd": (lambda: MMD(DENOISER, SAMPLER, DATA, batch_size=16), None),
    "sliced-w2": (
        lambda: SlicedWasserstein(DENOISER, SAMPLER, DATA, batch_size=16, num_projections=8),
        None,
    ),
    "frechet": (lambda: Frechet(DENOISER, SAMPLER, DATA, batch_size=16), None),
    # the search methods' bounds (schedopt.search), fitted by the same loop
    "ays-bound": (lambda: AYSBound(Spectrum([0.5, 2.0]), num_steps=4, with_start=True), None),
    "dmn-bound": (lambda: DMNBound(num_steps=4, solver="unipc"), None),
    "sum-over-budgets": (
        lambda: SumOverBudgets(tuple(GaussianKL(Spectrum([1.0]), num_steps=n) for n in (2, 4))),
        lambda start: BudgetRanges.from_schedule(start, (2, 4)),
    ),
}


def _instance(name):
    make_objective, wrap = OBJECTIVES[name]
    start = MonotoneCubic.from_schedule(EDM(), 6)
    return make_objective(), (wrap(start) if wrap else start)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_jit_value_and_gradient_are_finite(name):
    objective, schedule = _instance(name)
    key = jax.random.key(0)
    # one compiled program, the objective an argument as in optimize's loop (equinox's filter
    # keeps its string and function fields static)
    value, grads = eqx.filter_jit(eqx.filter_value_and_grad(lambda s, o, k: o(s, k)))(
        schedule, objective, key
    )
    assert value.shape == () and bool(jnp.isfinite(value)), value
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(bool(jnp.any(g != 0)) for g in leaves), "the gradient is zero everywhere"


@pytest.mark.parametrize("name", OBJECTIVES)
def test_describe_is_json(name):
    objective, _ = _instance(name)
    record = objective.describe()
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert record["objective"] == objective.name


def test_the_table_covers_every_objective_class():
    classes = {
        getattr(objectives, n)
        for n in objectives.__all__
        if isinstance(getattr(objectives, n), type)
        and issubclass(getattr(objectives, n), AbstractObjective)
    }
    concrete = {c for c in classes if not getattr(c, "__abstractmethods__", None)}
    concrete -= {objectives.AbstractSampleObjective}  # abstract: no __call__ of its own
    covered = {type(make()) for make, _ in OBJECTIVES.values()}
    assert concrete <= covered, concrete - covered
