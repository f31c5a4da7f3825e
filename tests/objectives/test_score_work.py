"""The path-energy objective of Williams et al. (``ScoreWork``): closed forms, gradients, the
schedule it learns (the same as Algorithm 1's), and ``schedopt optimize --objective score-work``."""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import schedopt.objectives.score_work as score_work_module
from schedopt.cli import main
from schedopt.models import GaussianDenoiser
from schedopt.objectives.score_work import ScoreWork
from schedopt.optimize import optimize
from schedopt.schedules import EDM, LogSNRLinear, MonotoneCubic, grid
from schedopt.score_optimal import CorrectorCost, CostTable, gaussian_local_cost


def _log_uniform_table(num_intervals=64):
    """Constant cost per unit log s: the optimum is log-uniform (logSNR linear in t)."""
    log_levels = jnp.linspace(np.log(0.002), np.log(80.0), num_intervals + 1)
    return CostTable(log_levels, jnp.full((num_intervals,), 0.3))


def test_energy_of_edm_matches_the_closed_form_and_log_uniform_is_optimal():
    objective = ScoreWork(_log_uniform_table())
    np.testing.assert_allclose(objective(LogSNRLinear()), 1.0, atol=1e-5)
    # E / (Delta u)^2 = (b - a)^2 / (a b log(b / a)^2), a = s_min^(1/rho), b = s_max^(1/rho)
    for rho, rtol in ((1.0, 2e-2), (2.0, 1e-4), (3.0, 1e-4), (7.0, 1e-4)):
        a, b = 0.002 ** (1 / rho), 80.0 ** (1 / rho)
        expected = (b - a) ** 2 / (a * b * np.log(b / a) ** 2)  # 356 for rho = 1: steep ends
        np.testing.assert_allclose(objective(EDM(rho=rho)), expected, rtol=rtol)


def test_gradient_matches_finite_differences():
    objective = ScoreWork(_log_uniform_table())

    def f(rho):
        return objective(EDM(rho=rho))

    grad = jax.grad(f)(jnp.asarray(5.0))
    eps = 0.05
    fd = (f(5.0 + eps) - f(5.0 - eps)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-2)


def test_learned_schedule_is_algorithm_1s_and_the_closed_form():
    # eigenvalues below s_min^2 keep the optimum smooth at the clean end (representable)
    c = jnp.array([1e-6, 1e-3, 1.0])
    den = GaussianDenoiser(c)
    table = CostTable.estimate(
        CorrectorCost(),
        den,
        den.sample(jax.random.key(0), 16384),
        jax.random.key(1),
        num_intervals=128,
    )
    objective = ScoreWork(table)
    result = optimize(
        MonotoneCubic.from_schedule(EDM(), 24),
        objective,
        num_iterations=800,
        learning_rate=2e-2,
        progress=False,
    )
    assert 1.0 <= result.final_loss < 1.0005 < float(objective(EDM())), result.final_loss
    n = 12
    learned = np.log(np.asarray(grid(result.schedule, n))[:-1])
    algorithm_1 = np.log(np.asarray(table.noise_levels(n)))
    np.testing.assert_allclose(learned, algorithm_1, atol=0.01)
    # the closed-form length (trapezoid on sqrt(delta)) at equal increments
    s = np.geomspace(0.002, 80.0, 20001)
    speed = np.sqrt(np.asarray(gaussian_local_cost(c, s), np.float64))
    length = np.concatenate([[0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * np.diff(s))])
    exact = np.log(np.interp(np.linspace(length[-1], 0.0, n), length, s))
    np.testing.assert_allclose(algorithm_1, exact, atol=0.01)


def test_bad_input():
    objective = ScoreWork(_log_uniform_table())
    with pytest.raises(ValueError, match="noise range"):
        objective(EDM(sigma_min=0.001, sigma_max=80.0))
    with pytest.raises(ValueError, match="table"):
        ScoreWork("table")
    with pytest.raises(ValueError, match="num_quadrature"):
        ScoreWork(_log_uniform_table(), num_quadrature=0)
    with pytest.raises(ValueError, match="costs"):
        CostTable(jnp.linspace(0.0, 1.0, 5), jnp.ones(3))
    with pytest.raises(ValueError, match="log_levels"):
        CostTable(jnp.array([0.0, 2.0, 1.0]), jnp.ones(2))


def test_describe_is_json_ready():
    import json

    record = ScoreWork(_log_uniform_table()).describe()
    assert record["objective"] == "score-work" and record["table"]["num_intervals"] == 64
    json.dumps(record)


def test_docstring_examples():
    result = doctest.testmod(score_work_module)
    assert result.failed == 0 and result.attempted > 0


def test_cli_learns_an_equal_cost_schedule(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "optimize",
        "--objective",
        "score-work",
        "--cost-dataset",
        "ring",
        "--cost-samples",
        "256",
        "--cost-intervals",
        "32",
        "--iterations",
        "150",
        "--num-steps",
        "8",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "equal-cost-alg1" in text and "edm-rho3" in text
    from schedopt.io.card import load_card

    card = load_card(out / "schedule.json")
    assert card["objective"]["objective"] == "score-work"
    assert 1.0 <= card["objective_value"] < card["settings"]["comparison"]["edm-rho7"]


def test_cli_needs_a_denoiser_without_an_oracle(tmp_path, capsys):
    args = ["optimize", "--objective", "score-work", "--cost-dataset", "moons"]
    assert main([*args, "--out", str(tmp_path), "--no-progress"]) == 2
    assert "--cost-denoiser" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_predictor_cost(tmp_path, capsys):
    args = [
        "optimize",
        "--objective",
        "score-work",
        "--cost",
        "predictor",
        "--cost-dataset",
        "ring",
        "--cost-samples",
        "256",
        "--cost-intervals",
        "32",
        "--iterations",
        "100",
        "--out",
        str(tmp_path / "p"),
        "--no-progress",
    ]
    assert main(args) == 0
    assert "score-work" in capsys.readouterr().out
