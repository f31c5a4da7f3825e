"""schedopt optimize / kl / baseline through the real entry point."""

import json
import subprocess
import sys

import numpy as np
import pytest

from schedopt.cli import main
from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid
from schedopt.io.card import card_schedule, load_card
from schedopt.schedules import EDM, grid


def test_kl_json_matches_the_api(capsys):
    assert (
        main(
            [
                "kl",
                "--sigmas",
                "80,10,1,0.1,0",
                "--eigenvalues",
                "0.5,1,2",
                "--solver",
                "heun",
                "--json",
            ]
        )
        == 0
    )
    record = json.loads(capsys.readouterr().out)
    expected = gaussian_kl(
        Spectrum([0.5, 1.0, 2.0]), sigma_grid([80.0, 10.0, 1.0, 0.1, 0.0]), "heun"
    )
    np.testing.assert_allclose(record["kl"], float(expected), rtol=1e-6)
    assert record["num_steps"] == 4 and record["solver"] == "heun"


def test_baseline_json(capsys):
    assert main(["baseline", "edm", "--num-steps", "6", "--rho", "5", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(record["sigmas"], grid(EDM(rho=5.0), 6), rtol=1e-6)
    assert record["num_steps"] == 6
    # --nfe, where it counted steps, is a deprecated spelling: the same number, a warning
    assert main(["baseline", "edm", "--nfe", "6", "--rho", "5", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == record
    assert captured.err.strip() == (
        "schedopt baseline: warning: --nfe is deprecated: write --num-steps (here it has "
        "always counted sampler steps, not evaluations; the number is used unchanged)"
    )


def test_optimize_writes_a_card_a_plot_and_a_log(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "optimize",
        "--eigenvalues",
        "0.3,1,2",
        "--num-steps",
        "5",
        "--iterations",
        "60",
        "--num-knots",
        "8",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    names = (
        "learned",
        "edm-rho7",
        "logsnr-uniform",
        "uniform-t",
        "cosine",
        "tangent-1",
        "tangent-optimal",
        "asymptotic-optimum",
    )
    rows = [
        line.split()[0] for line in printed.splitlines() if line.split()[:1] in [[n] for n in names]
    ]
    assert rows == list(names)  # the table keeps the references' order
    card = load_card(out / "schedule.json")
    assert card["grid"]["num_steps"] == 5 and len(card["grid"]["noise_levels"]) == 6
    assert card["optimized_at"] == {"num_steps": 5, "nfe": 5, "final": "zero"}  # Euler
    assert card["settings"]["num_steps"] == 5 and "nfe" not in card["settings"]
    learned = card_schedule(card)
    value = gaussian_kl(Spectrum([0.3, 1.0, 2.0]), sigma_grid(grid(learned, 5)))
    np.testing.assert_allclose(card["objective_value"], float(value), rtol=1e-4)
    assert (out / "schedule.png").stat().st_size > 1000
    assert len((out / "log.jsonl").read_text().splitlines()) == 60


@pytest.mark.slow
def test_console_script_default_main_job(tmp_path):
    # The exact command scripts/demo.sh runs, on the embedded defaults.
    exe = [
        sys.executable,
        "-m",
        "schedopt.cli",
        "optimize",
        "--no-progress",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(exe, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    card = json.loads((tmp_path / "schedule.json").read_text())
    comparison = card["settings"]["comparison"]
    assert all(comparison["learned"] < v for k, v in comparison.items() if k != "learned")


def test_optimize_resume_continues_a_run_exactly(tmp_path, capsys):
    common = [
        "optimize",
        "--eigenvalues",
        "0.3,1,2",
        "--num-steps",
        "4",
        "--num-knots",
        "6",
        "--no-progress",
    ]
    resume = ["--resume", "--checkpoint-every", "10"]
    assert main(common + ["--iterations", "30", "--out", str(tmp_path / "a"), *resume]) == 0
    # A second call with more iterations resumes from step 30 of the first.
    assert main(common + ["--iterations", "50", "--out", str(tmp_path / "a"), *resume]) == 0
    assert main(common + ["--iterations", "50", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    resumed, straight = load_card(tmp_path / "a"), load_card(tmp_path / "b")
    assert resumed["schedule"] == straight["schedule"]
    steps = [json.loads(x)["step"] for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(50))


def test_a_former_dataset_name_warns_and_means_the_same_data_set():
    from schedopt.cli._objectives.trajectory import dataset_name

    with pytest.warns(FutureWarning, match="--dataset gmm-64 is deprecated: use --dataset gmm64"):
        assert dataset_name("gmm-64") == "gmm64"
    assert dataset_name("ring") == "ring"
