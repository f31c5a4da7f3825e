"""Algorithm 2 while a network trains: the logged cost spread, resuming the grid with the
run, and ``schedopt train --online-schedule``."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from schedopt.cli import main
from schedopt.io import load_card
from schedopt.models.networks import MLPDenoiser
from schedopt.models.training import train_denoiser
from schedopt.schedules import EDM
from schedopt.score_optimal import CorrectorCost, OnlineEqualCost


@pytest.fixture
def data(two_mode_mixture):
    return np.asarray(two_mode_mixture.sample(jax.random.key(0), 2000))


def _train(hook, steps, directory, data):
    net = MLPDenoiser(1, width=16, depth=1, sigma_data=1.0, rngs=nnx.Rngs(0))
    return train_denoiser(
        net,
        data,
        num_steps=steps,
        batch_size=64,
        log_every=10,
        checkpoint_every=20,
        checkpoint_dir=directory / "checkpoints",
        log_path=directory / "log.jsonl",
        progress=False,
        hook=hook,
    )


def test_a_resumed_run_continues_the_online_grid_exactly(tmp_path, data):
    online = OnlineEqualCost(CorrectorCost(), EDM(), num_points=6, gamma=0.3, num_samples=64)
    whole = online.hook(data)
    _train(whole, 40, tmp_path / "whole", data)
    _train(online.hook(data), 20, tmp_path / "split", data)  # stopped after 20 steps
    resumed = online.hook(data)  # a new process: the grid starts at the base grid
    _train(resumed, 40, tmp_path / "split", data)
    assert [r["step"] for r in resumed.history] == [10, 20, 30, 40]
    np.testing.assert_array_equal(np.asarray(resumed.times), np.asarray(whole.times))
    # without the resume the second half would start from the base grid again
    restarted = online.hook(data)
    for step in (30, 40):
        restarted(step, _train(None, 40, tmp_path / "whole", data).model)
    assert not np.allclose(np.asarray(restarted.times), np.asarray(whole.times))


def test_resume_rejects_a_log_with_another_number_of_points(data):
    hook = OnlineEqualCost(CorrectorCost(), EDM(), num_points=6).hook(data[:100])
    with pytest.raises(ValueError, match="num_points"):
        hook.resume([{"step": 10, "next_schedule_times": [1.0, 0.5, 0.0]}])
    hook.resume([{"step": 10, "loss": 1.0}])  # records without a grid: nothing to resume
    np.testing.assert_array_equal(np.asarray(hook.times), np.asarray(hook.online.initial_times()))


@pytest.mark.slow
def test_training_with_online_adaptation_logs_a_shrinking_cost_spread(tmp_path, two_mode_mixture):
    data = np.asarray(two_mode_mixture.sample(jax.random.key(0), 4000))
    net = MLPDenoiser(1, width=48, depth=2, sigma_data=1.0, rngs=nnx.Rngs(0))
    online = OnlineEqualCost(CorrectorCost(), EDM(), num_points=12, gamma=0.15, num_samples=256)
    hook = online.hook(data)
    log = tmp_path / "log.jsonl"
    result = train_denoiser(
        net,
        data,
        num_steps=300,
        batch_size=128,
        log_every=15,
        progress=False,
        hook=hook,
        log_path=log,
    )
    spreads = [r["cost_spread"] for r in result.history]
    assert len(spreads) == 20 and all(len(r["schedule_noise_levels"]) == 12 for r in result.history)
    assert np.mean(spreads[-3:]) < 0.4 * spreads[0], spreads
    logged = [line for line in log.read_text().splitlines() if "cost_spread" in line]
    assert len(logged) == 20
    levels = hook.noise_levels()
    assert levels[0] == pytest.approx(80.0) and bool(np.all(np.diff(levels) < 0))


TRAIN = [
    "train", "--dataset", "ring", "--num-train", "512", "--steps", "30", "--batch-size", "64",
    "--width", "16", "--depth", "1", "--sample-nfe", "0", "--no-progress", "--log-every", "10",
]  # fmt: skip


def test_train_cli_online_schedule_writes_the_adapted_grid_as_a_card(tmp_path, capsys):
    run = tmp_path / "run"
    argv = [*TRAIN, "--out", str(run), "--online-schedule", "corrector", "--online-points", "6"]
    assert main([*argv, "--online-samples", "64", "--online-gamma", "0.5"]) == 0
    summary = json.loads((run / "train.json").read_text())
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(len(r["interval_costs"]) == 5 for r in records)
    card = load_card(run / "online_schedule.json")
    assert card["grid"]["num_steps"] == 6 and card["grid"]["noise_levels"][-1] == 0.0
    final = EDM().noise_level(jnp.asarray(records[-1]["next_schedule_times"]))
    np.testing.assert_allclose(card["grid"]["noise_levels"][:-1], final, rtol=1e-3)
    np.testing.assert_allclose(summary["online_schedule"]["noise_levels"], final, rtol=1e-5)
    assert card["objective"] == {"objective": "online-equal-cost", "cost": "corrector"}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--online-gamma", "0"], "--online-gamma"),
        (["--online-points", "2"], "--online-points"),
        (["--online-samples", "0"], "--online-samples"),
    ],
)
def test_train_cli_online_bad_settings_name_the_flag(tmp_path, capsys, extra, message):
    argv = [*TRAIN, "--out", str(tmp_path / "run"), "--online-schedule", "corrector", *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
