"""The noise range on the command line: ``optimize --learn-range`` and ``baseline --range``."""

import json

import numpy as np

from schedopt.cli import main
from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid
from schedopt.io.card import card_schedule, load_card
from schedopt.schedules import EDM, RangedSchedule, Tabulated, grid

EIGENVALUES = "0.05,0.2,1"


def test_optimize_learns_the_range_and_records_it(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["optimize", "--eigenvalues", EIGENVALUES, "--num-steps", "4", "--num-knots", "8"]
    argv += ["--learn-range", "--init", "ve", "--range-bounds", "0.002,160", "--iterations", "150"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    card = load_card(out / "schedule.json")
    learned = card["settings"]["learned_range"]
    assert learned["bounds"] == [0.002, 160.0]
    assert 0.002 < learned["sigma_min"] < learned["sigma_max"] < 160.0
    # small eigenvalues: a first level far below 80 costs little start mismatch
    assert learned["sigma_max"] < 40.0
    np.testing.assert_allclose(card["endpoints"]["sigma_max"], learned["sigma_max"], rtol=1e-6)
    schedule = card_schedule(card)
    assert isinstance(schedule, RangedSchedule)
    sigmas = np.asarray(grid(schedule, 4, "zero"))
    np.testing.assert_allclose(sigmas, card["grid"]["noise_levels"], rtol=1e-6)
    # the card's value is the exact KL of its grid, below EDM's on the fixed range
    spectrum = Spectrum(np.array(EIGENVALUES.split(","), float))
    kl = float(gaussian_kl(spectrum, sigma_grid(sigmas), "euler", init="ve"))
    np.testing.assert_allclose(card["objective_value"], kl, rtol=1e-4)
    assert kl < card["settings"]["comparison"]["edm-rho7"]


def test_baseline_on_a_range(capsys):
    assert main(["baseline", "edm", "--num-steps", "5", "--range", "0.5,10", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    expected = grid(EDM(sigma_min=0.5, sigma_max=10.0), 5, "zero")
    np.testing.assert_allclose(record["sigmas"], expected, rtol=1e-6)
    assert record["range"] == [0.5, 10.0]
    # a discrete table keeps its shape (its logSNR fraction) on the range
    assert (
        main(["baseline", "scaled-linear", "--num-steps", "5", "--range", "0.1,5", "--json"]) == 0
    )
    sigmas = np.asarray(json.loads(capsys.readouterr().out)["sigmas"])
    np.testing.assert_allclose(sigmas[[0, -2]], [5.0, 0.1], rtol=1e-5)
    table = np.asarray(grid(Tabulated.scaled_linear(), 5, "zero"))[:-1]
    fraction = lambda s: np.log(s / s[-1]) / np.log(s[0] / s[-1])  # noqa: E731
    np.testing.assert_allclose(fraction(sigmas[:-1]), fraction(table), atol=1e-5)


def test_optimize_learns_time_inputs_with_a_sample_objective_and_refuses_a_grid_one(tmp_path):
    out = tmp_path / "run"
    argv = ["optimize", "--objective", "sliced-w2", "--dataset", "ring", "--num-steps", "3"]
    argv += ["--solver", "euler", "--batch-size", "64", "--num-data", "256", "--iterations", "5"]
    argv += ["--lr", "0.05", "--learn-range", "--init", "ve", "--time-inputs", "4"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    card = load_card(out / "schedule.json")
    assert card["schedule"]["family"] == "decoupled"
    assert card["settings"]["time_inputs"] == 4
    assert "learned_range" in card["settings"]
    schedule = card_schedule(card)
    assert schedule.offsets.shape == (4,) and np.any(np.asarray(schedule.offsets) != 0)
    assert isinstance(schedule.schedule, RangedSchedule)
    export = ["export", "--card", str(out / "schedule.json"), "--format", "k-diffusion"]
    assert main([*export, "--out", str(tmp_path / "sigmas.json")]) == 2
    assert not (tmp_path / "sigmas.json").exists()
    grid_only = ["optimize", "--eigenvalues", EIGENVALUES, "--time-inputs", "4"]
    assert main([*grid_only, "--out", str(tmp_path / "kl")]) == 2
