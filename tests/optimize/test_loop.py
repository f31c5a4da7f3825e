"""The optax loop: determinism, logs, errors."""

import json

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from schedopt.gaussian import Spectrum
from schedopt.objectives import AbstractObjective, GaussianKL
from schedopt.optimize import OptimizationError, optimize
from schedopt.schedules import EDM, LogSNRLinear, MonotoneCubic

OBJECTIVE = GaussianKL(Spectrum([0.3, 1.0, 2.0]), num_steps=6)


def test_deterministic_given_a_seed_and_logged(tmp_path):
    start = MonotoneCubic.from_schedule(EDM(), 8)
    a = optimize(
        start, OBJECTIVE, num_iterations=120, seed=3, progress=False, log_path=tmp_path / "a.jsonl"
    )
    b = optimize(start, OBJECTIVE, num_iterations=120, seed=3, progress=False, chunk_size=7)
    np.testing.assert_array_equal(a.schedule.logits, b.schedule.logits)
    np.testing.assert_array_equal(a.losses, b.losses)
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(120))
    np.testing.assert_allclose([x["loss"] for x in lines], a.losses)
    assert a.losses[-1] < a.losses[0] and a.final_loss <= a.losses[0]


def test_custom_optax_optimizer():
    result = optimize(
        MonotoneCubic.from_schedule(EDM(), 8),
        OBJECTIVE,
        num_iterations=50,
        optimizer=optax.sgd(1e-3),
        progress=False,
    )
    assert result.final_loss < result.losses[0]


def test_non_finite_loss_is_reported_with_its_step():
    class Explodes(AbstractObjective):
        def __call__(self, schedule, key):
            return jnp.sum(schedule.logits) * jnp.inf

    with pytest.raises(OptimizationError, match="step 0"):
        optimize(MonotoneCubic.uniform(4), Explodes(), num_iterations=5, progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_iterations=0), "num_iterations=0"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(chunk_size=0), "chunk_size=0"),
        (dict(loop="gpu"), "`loop` must be one of auto, device, host, got loop='gpu'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optimize(MonotoneCubic.uniform(4), OBJECTIVE, progress=False, **kwargs)


def test_schedule_without_parameters():
    with pytest.raises(ValueError, match="no floating-point parameters"):
        optimize(LogSNRLinear(), OBJECTIVE, num_iterations=2, progress=False)
    with pytest.raises(ValueError, match="AbstractObjective"):
        optimize(EDM(), lambda s, k: 0.0, num_iterations=2, progress=False)


def test_repeated_calls_reuse_the_compiled_loop():
    traces = []

    class Counted(AbstractObjective):
        def __call__(self, schedule, key):
            traces.append(1)  # runs only while JAX traces
            return OBJECTIVE(schedule, key)

    start = MonotoneCubic.from_schedule(EDM(), 8)
    optimize(start, Counted(), num_iterations=5, learning_rate=0.0123, progress=False)
    first = len(traces)
    again = optimize(start, Counted(), num_iterations=5, learning_rate=0.0123, progress=False)
    assert first > 0 and len(traces) == first
    optimize(start, Counted(), num_iterations=5, learning_rate=0.0321, progress=False)
    assert len(traces) > first  # another learning rate is another optimizer
    assert np.isfinite(again.final_loss)


def test_early_stopping_returns_the_best_validated_iterate():
    start = MonotoneCubic.from_schedule(EDM(), 8)
    # validation that prefers the start: every later iterate is worse, so the run stops
    # after `patience` chunks and returns the start itself
    far = lambda s: jnp.sum((s.logits - start.logits) ** 2)  # noqa: E731
    stopped = optimize(
        start, OBJECTIVE, num_iterations=400, chunk_size=20, validation=far, patience=3,
        progress=False,
    )  # fmt: skip
    assert stopped.num_iterations == 60 and len(stopped.losses) == 60
    assert stopped.best_step == 0 and [v[0] for v in stopped.validation] == [0, 20, 40, 60]
    np.testing.assert_array_equal(stopped.schedule.logits, start.logits)
    # validation equal to the objective: improves every chunk, runs to the end, and the
    # best iterate is the last one (the same schedule as a run without validation)
    plain = optimize(start, OBJECTIVE, num_iterations=100, chunk_size=20, progress=False)
    tracked = optimize(
        start, OBJECTIVE, num_iterations=100, chunk_size=20, progress=False,
        validation=lambda s: OBJECTIVE(s, None), patience=2,
    )  # fmt: skip
    assert tracked.num_iterations == 100 and tracked.best_step == 100
    np.testing.assert_array_equal(tracked.schedule.logits, plain.schedule.logits)
    values = [v for _, v in tracked.validation]
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(patience=2), "`patience` needs `validation`"),
        (dict(validation=3), "`validation` must be callable"),
        (dict(validation=lambda s: 0.0, patience=0), "patience=0"),
        (dict(validation=lambda s: 0.0, checkpoint_dir="x"), "cannot be combined"),
    ],
)
def test_bad_validation_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optimize(MonotoneCubic.uniform(4), OBJECTIVE, progress=False, **kwargs)


def test_host_and_device_loops_take_the_same_steps():
    objective = GaussianKL(Spectrum([0.5, 2.0]), num_steps=6, final="min")
    start = MonotoneCubic.from_schedule(EDM(), 6)
    runs = {
        loop: optimize(
            start, objective, num_iterations=120, chunk_size=50, progress=False, loop=loop
        )  # fmt: skip
        for loop in ("device", "host")
    }
    np.testing.assert_allclose(runs["host"].losses, runs["device"].losses, rtol=1e-5)
    np.testing.assert_allclose(
        runs["host"].schedule.logits, runs["device"].schedule.logits, rtol=1e-4, atol=1e-6
    )
    assert runs["host"].num_iterations == 120


def test_objectives_that_run_a_sampler_step_from_the_host():
    from schedopt.data import load_dataset
    from schedopt.models import GaussianMixtureDenoiser
    from schedopt.objectives import SlicedWasserstein, SumOverBudgets
    from schedopt.sampling import make_sampler

    ds = load_dataset("ring", num_train=64, num_test=1)
    denoiser = GaussianMixtureDenoiser.from_mixture(ds.distribution)
    sample = SlicedWasserstein(denoiser, make_sampler("euler", 3), ds.train, batch_size=16)
    kl = GaussianKL(Spectrum([1.0]), num_steps=3)
    assert sample.host_loop and not kl.host_loop
    from schedopt.objectives import TrajectoryMatching

    pairs = TrajectoryMatching(denoiser, make_sampler("euler", 3), num_pairs=8, reference_steps=4)
    assert pairs.host_loop
    assert SumOverBudgets((kl, sample)).host_loop and not SumOverBudgets((kl,)).host_loop
