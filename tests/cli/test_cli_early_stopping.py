"""``optimize --objective trajectory --patience``: early stopping on the held-out pairs."""

from schedopt.cli import main
from schedopt.io.card import load_card


def test_trajectory_stops_early_and_records_the_kept_step(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["optimize", "--objective", "trajectory", "--solver", "euler", "--num-steps", "3"]
    argv += ["--num-pairs", "64", "--reference-steps", "16", "--num-knots", "6"]
    argv += ["--iterations", "300", "--lr", "0.5", "--patience", "1", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    settings = load_card(out / "schedule.json")["settings"]
    assert settings["patience"] == 1
    assert settings["init"] == "ve"  # teacher pairs start from noise: the default's real value
    run, kept = settings["iterations_run"], settings["best_step"]
    assert kept % 50 == 0 and kept <= run <= 300
    assert run == 300 or run == kept + 50  # stopped one chunk after the best
    assert "early stopping: kept step" in capsys.readouterr().err
