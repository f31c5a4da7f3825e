"""Noise learners: unbiased for their target, each learns what its method says, densities
and schedules agree, and training with one is deterministic, resumable and logged."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from schedopt.models.networks import MLPDenoiser
from schedopt.models.noise import LogNormal, LogUniform
from schedopt.models.noise_learning import (
    LEARNERS,
    AbstractNoiseLearner,
    AdaptiveHistogram,
    FixedNoise,
    LearnedSchedule,
    LearnedWeighting,
    logsnr_range,
    noise_learner,
    schedule_from_density,
)
from schedopt.models.training import train_denoiser
from schedopt.schedules import AbstractSchedule

DATA = np.random.default_rng(0).normal(size=(512, 2)).astype(np.float32) * np.array([1.0, 0.5])
LAM = logsnr_range(0.002, 80.0, 4097)


def _error(s):
    """The x0 error of the exact denoiser of N(0, 1) data at level s: s^2 / (1 + s^2)."""
    return s**2 / (1.0 + s**2)


def _every(weighting="edm"):
    """One of every learner, with parameters or statistics moved off their start."""
    target = LogNormal()
    kw = dict(weighting=weighting, sigma_data=1.0)
    return [
        FixedNoise(target, **kw),
        LearnedSchedule.create(target, num_knots=16, **kw),
        LearnedWeighting.create(target, num_features=16, **kw),
        AdaptiveHistogram(target, num_bins=16, **kw),
    ]


def _moved(learner, seed=1):
    """A state off the start: random parameters, or statistics after a few updates."""
    state = learner.init_state()
    key = jax.random.key(seed)
    params = jax.tree.map(lambda x: x + jax.random.normal(key, x.shape), state["params"])
    stats = state["stats"]
    for i in range(20):
        s, _ = _draw(learner, params, stats, jax.random.fold_in(key, i), 512)
        noise = jnp.exp(jax.random.normal(jax.random.fold_in(key, 100 + i), s.shape))
        stats = _update(learner, stats, _error(s) * noise, s)
    return params, stats


@eqx.filter_jit
def _draw(learner, params, stats, key, num_samples):
    return learner.draw(params, stats, key, num_samples)


@eqx.filter_jit
def _update(learner, stats, errors, noise_level):
    return learner.update_stats(stats, errors, noise_level)


def _exact_objective(learner):
    s = np.exp(-0.5 * LAM)
    return float(np.trapezoid(np.asarray(learner.target_weight(jnp.asarray(s))) * _error(s), -LAM))


@pytest.mark.parametrize("weighting", ["edm", "vdm"])
@pytest.mark.parametrize("index", range(4), ids=["none", *LEARNERS])
def test_every_learner_estimates_its_target_objective_without_bias(index, weighting):
    learner = _every(weighting)[index]
    params, stats = _moved(learner)
    s, weight = _draw(learner, params, stats, jax.random.key(7), 400_000)
    assert bool((s >= 0.002 * 0.999).all() and (s <= 80.0 * 1.001).all()) or index in (0, 2)
    estimates = np.asarray(weight * _error(s), dtype=np.float64)
    if index in (0, 2):  # draws from the log-normal itself: mass outside [0.002, 80] is ~1e-5
        estimates = estimates[(np.asarray(s) >= 0.002) & (np.asarray(s) <= 80.0)]
        mean = estimates.sum() / 400_000
    else:
        mean = estimates.mean()
    stderr = estimates.std() / np.sqrt(estimates.size)
    exact = _exact_objective(learner)
    assert abs(mean - exact) < 5 * stderr + 1e-3 * exact, (mean, exact, stderr)


@pytest.mark.parametrize("index", range(4), ids=["none", *LEARNERS])
def test_every_density_integrates_to_one_and_its_schedule_pushes_it_forward(index):
    learner = _every()[index]
    params, stats = _moved(learner)
    dens = np.asarray(learner.density(params, stats, jnp.asarray(LAM)), dtype=np.float64)
    finite = np.isfinite(dens)
    assert np.trapezoid(np.where(finite, dens, 0.0), -LAM) == pytest.approx(1.0, abs=0.02)
    schedule = learner.schedule(params, stats)
    assert isinstance(schedule, AbstractSchedule)
    assert float(schedule.sigma_min) == pytest.approx(0.002) and float(
        schedule.sigma_max
    ) == pytest.approx(80.0)
    # the schedule's t-quantiles are the density's: compare cumulative distributions
    t = np.linspace(0.05, 0.95, 10)
    lam_t = np.asarray(schedule.logsnr(jnp.asarray(t)))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(-LAM))])
    cdf = np.where(np.isfinite(cdf), cdf, 1.0)
    assert np.interp(-lam_t, -LAM, cdf) == pytest.approx(t, abs=0.02)


def test_schedule_from_density_of_a_log_normal_is_its_quantile_function():
    s = np.exp(-0.5 * LAM)
    schedule = schedule_from_density(LAM, np.asarray(LogNormal().logsnr_density(jnp.asarray(s))))
    # ln s = -1.2 + 1.2 z: the median (t = 0.5) is s = exp(-1.2), t = 0.8413 is z = 1
    levels = np.asarray(schedule.noise_level(jnp.array([0.5, 0.8413])))
    assert np.log(levels) == pytest.approx([-1.2, 0.0], abs=0.03)
    with pytest.raises(ValueError, match="`density` must be finite"):
        schedule_from_density(LAM, -np.ones_like(LAM))
    with pytest.raises(ValueError, match="one length"):
        schedule_from_density(LAM, np.ones(3))


def _variance(learner, params, stats, n=20_000):
    s, weight = _draw(learner, params, stats, jax.random.key(11), n)
    return float(jnp.var(weight * _error(s)))


def test_vdm_schedule_descends_the_variance_of_the_loss_estimator():
    learner = LearnedSchedule.create(LogNormal(), num_knots=16, weighting="vdm", sigma_data=1.0)
    params, stats = learner.init_state()["params"], {}
    opt = optax.adam(0.05)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, key):
        def loss(p):
            s, w = learner.draw(p, stats, key, 2048)
            return learner.learner_loss(p, stats, w * _error(s), s)

        g = jax.grad(loss)(params)
        updates, opt_state = opt.update(g, opt_state)
        return optax.apply_updates(params, updates), opt_state

    before = _variance(learner, params, stats)
    for i in range(300):
        params, opt_state = step(params, opt_state, jax.random.key(i))
    after = _variance(learner, params, stats)
    assert after < 0.2 * before, (before, after)
    # the optimum proposal is q ∝ p w sqrt(E[l^2]) = (1 / (2 s^2)) s^2 / (1 + s^2)
    lam = jnp.asarray(LAM[200:-200:200])
    s = jnp.exp(-0.5 * lam)
    optimum = 1.0 / (1.0 + s**2)
    optimum = optimum / np.trapezoid(1.0 / (1.0 + np.exp(-LAM)), -LAM)
    learned = np.asarray(learner.density(params, stats, lam))
    where = np.asarray(optimum) > 0.1 * float(optimum.max())  # where the mass is: s < 3
    assert learned[where] == pytest.approx(np.asarray(optimum)[where], rel=0.3)


def test_adaptive_histogram_approaches_the_variance_optimal_proposal():
    learner = AdaptiveHistogram(
        LogUniform(), num_bins=8, weighting="vdm", decay=0.98, floor=0.01, sigma_data=1.0
    )
    stats = learner.init_state()["stats"]
    before = _variance(learner, {}, stats)
    for i in range(300):
        s, _ = _draw(learner, {}, stats, jax.random.key(i), 512)
        stats = _update(learner, stats, _error(s), s)
    probs = np.asarray(learner.probabilities(stats))
    edges = np.asarray(learner.edges())
    lam = np.linspace(edges[0], edges[-1], 8001)
    root = 0.5 / (1.0 + np.exp(-lam))  # p w l = (1 / (2 s^2)) s^2 / (1 + s^2)
    masses = np.array(  # sqrt(E[a^2]) over each bin, drawn uniformly in it
        [
            np.sqrt((root[(lam <= hi) & (lam >= lo)] ** 2).mean())
            for hi, lo in zip(edges[:-1], edges[1:], strict=True)
        ]
    )
    optimum = 0.99 * masses / masses.sum() + 0.01 / 8
    assert probs == pytest.approx(optimum, rel=0.1, abs=5e-4)
    assert _variance(learner, {}, stats) < 0.5 * before


def test_uncertainty_learns_the_log_of_the_expected_loss():
    learner = LearnedWeighting.create(LogUniform(), num_features=32, sigma_data=1.0)
    params = learner.init_state()["params"]
    opt = optax.adam(0.05)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, key):
        s, w = learner.draw(params, {}, key, 1024)
        g = jax.grad(learner.learner_loss)(params, {}, w * _error(s), s)
        updates, opt_state = opt.update(g, opt_state)
        return optax.apply_updates(params, updates), opt_state

    for i in range(1500):
        params, opt_state = step(params, opt_state, jax.random.key(i))
    s = jnp.array([0.01, 0.1, 1.0, 10.0])
    expected = learner.target_weight(s) / LogUniform().logsnr_density(s) * _error(s)  # w(s) l(s)
    u = learner.log_variance(params, s)
    assert np.asarray(u) == pytest.approx(np.log(np.asarray(expected)), abs=0.15)


def test_noise_learner_by_name_and_bad_input():
    for name in LEARNERS:
        learner = noise_learner(name)
        assert isinstance(learner, AbstractNoiseLearner) and learner.name == name
        json.dumps(learner.describe())
    with pytest.raises(ValueError, match="learn_noise.*'bogus'"):
        noise_learner("bogus")
    with pytest.raises(ValueError, match="floor"):
        AdaptiveHistogram(LogNormal(), floor=0.0)
    with pytest.raises(ValueError, match="decay"):
        AdaptiveHistogram(LogNormal(), decay=1.0)
    with pytest.raises(ValueError, match="weighting"):
        FixedNoise(LogNormal(), weighting="bogus")
    with pytest.raises(ValueError, match="sigma"):
        AdaptiveHistogram(LogNormal(), sigma_min=1.0, sigma_max=0.5)


# ---- training with a learner ----------------------------------------------------------


def _net(seed=0):
    return MLPDenoiser(2, width=32, depth=1, embed_dim=16, sigma_data=0.8, rngs=nnx.Rngs(seed))


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("name", LEARNERS)
def test_training_with_a_learner_resumes_bit_exactly_and_logs_the_density(tmp_path, name):
    kw = dict(
        batch_size=32, checkpoint_every=20, log_every=10, progress=False, seed=2, learn_noise=name
    )
    straight = train_denoiser(_net(), DATA, num_steps=40, **kw)

    def interrupt(record):
        if record["step"] == 30:
            raise KeyboardInterrupt

    ckpt, log = tmp_path / "ckpt", tmp_path / "log.jsonl"
    with pytest.raises(KeyboardInterrupt):
        train_denoiser(
            _net(), DATA, num_steps=40, checkpoint_dir=ckpt, log_path=log, callback=interrupt, **kw
        )
    resumed = train_denoiser(_net(9), DATA, num_steps=40, checkpoint_dir=ckpt, log_path=log, **kw)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(
            _leaves(nnx.state(resumed.model)), _leaves(nnx.state(straight.model)), strict=True
        )
    )
    assert all(
        np.array_equal(a, b)
        for a, b in zip(_leaves(resumed.noise_state), _leaves(straight.noise_state), strict=True)
    )
    start = straight.noise_learner.init_state()
    learned = {k: straight.noise_state[k] for k in start}
    moved = [
        not np.array_equal(a, b) for a, b in zip(_leaves(learned), _leaves(start), strict=True)
    ]
    assert any(moved)  # the learner changed during training
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    assert all(np.isfinite(list(r["noise_density"].values())).all() for r in records)
    assert isinstance(resumed.noise_schedule, AbstractSchedule)
    # a different learner cannot resume these checkpoints
    other = next(n for n in LEARNERS if n != name)
    with pytest.raises(ValueError, match="learn_noise"):
        train_denoiser(
            _net(), DATA, num_steps=60, checkpoint_dir=ckpt, **{**kw, "learn_noise": other}
        )


def test_training_without_a_learner_has_no_noise_schedule_and_refuses_bad_input():
    result = train_denoiser(_net(), DATA, num_steps=5, batch_size=16, progress=False)
    assert result.noise_schedule is None and result.noise_state is None
    with pytest.raises(ValueError, match="learn_noise.*'bogus'"):
        train_denoiser(_net(), DATA, num_steps=5, learn_noise="bogus", progress=False)
    with pytest.raises(ValueError, match="noise_learning_rate"):
        train_denoiser(
            _net(), DATA, num_steps=5, learn_noise="vdm", noise_learning_rate=-1.0, progress=False
        )
    learner = AdaptiveHistogram(LogUniform())
    with pytest.raises(ValueError, match="same target"):
        train_denoiser(_net(), DATA, num_steps=5, learn_noise=learner, progress=False)


# ---- the command line -----------------------------------------------------------------


@pytest.mark.slow
def test_cli_learn_noise_writes_a_card_that_optimize_and_export_take(tmp_path, capsys, train_args):
    from schedopt.cli import main
    from schedopt.io.card import card_schedule, load_card

    out = tmp_path / "run"
    assert main(train_args(out, "--learn-noise", "vdm", "--noise-knots", "8", sample_nfe=0)) == 0
    summary = json.loads((out / "train.json").read_text())
    assert summary["learn_noise"]["learner"]["learner"] == "vdm"
    assert (out / "noise_density.png").stat().st_size > 0
    card = load_card(out / "noise_schedule.json")
    assert card["objective"]["learner"] == "vdm" and card["objective"]["num_knots"] == 8
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all("noise_density" in r and "learner_loss" in r for r in records)
    # the card is the learned schedule itself
    learned = card_schedule(card)
    assert float(learned.sigma_min) == pytest.approx(0.002)
    exported = tmp_path / "sigmas.txt"
    assert main(["export", str(out / "noise_schedule.json"), "--format", "comfyui",
                 "--num-steps", "6", "--output", str(exported)]) == 0  # fmt: skip
    assert len(exported.read_text().split(",")) == 7
    fit = tmp_path / "fit"
    capsys.readouterr()
    assert main(["optimize", "--init-card", str(out / "noise_schedule.json"), "--num-steps", "4",
                 "--iterations", "5", "--out", str(fit), "--no-progress"]) == 0  # fmt: skip
    fitted = load_card(fit / "schedule.json")
    assert fitted["settings"]["init_card"] == str(out / "noise_schedule.json")
