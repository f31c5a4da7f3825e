"""``schedopt optimize --objective constant-rate`` (the doctests of the constant-rate modules run in
tests/test_doctests.py)."""

import json

import pytest

from schedopt.cli import build_parser, main


def _run(tmp_path, *extra):
    return main(
        [
            "optimize",
            "--objective",
            "constant-rate",
            "--measure-dataset",
            "gaussian",
            "--measure-samples",
            "300",
            "--speed-points",
            "33",
            "--num-steps",
            "5",
            "--iterations",
            "30",
            "--lr",
            "0.05",
            "--no-progress",
            "--out",
            str(tmp_path),
            *extra,
        ]
    )


def test_plugin_options_parse_without_clashing():
    args = build_parser().parse_args(
        ["optimize", "--objective", "constant-rate", "--measure", "eps", "--xi", "1.2"]
    )
    assert (args.measure, args.xi, args.speed_variable) == ("eps", 1.2, "alpha")


@pytest.mark.slow
def test_optimize_constant_rate_writes_card_and_beats_edm(tmp_path, capsys):
    # a normalised mix of the model-free and an oracle-based measure
    assert _run(tmp_path, "--measure", "fd,eps", "--measure-weights", "1,2") == 0
    card = json.loads((tmp_path / "schedule.json").read_text())
    comparison = card["settings"]["comparison"]
    assert comparison["learned"] < comparison["edm-rho7"]
    assert comparison["constant-rate-direct"] < comparison["edm-rho7"]
    assert card["objective"]["objective"] == "constant-rate"
    assert "constant-rate-direct" in capsys.readouterr().out


def test_bad_options_give_clear_errors(tmp_path, capsys):
    assert _run(tmp_path, "--measure", "kl") == 2
    assert "--measure" in capsys.readouterr().err
    assert _run(tmp_path, "--measure", "fd,x0", "--measure-weights", "1") == 2
    assert "--measure-weights" in capsys.readouterr().err
    code = main(
        ["optimize", "--objective", "constant-rate", "--measure", "x0", "--out", str(tmp_path)]
    )
    assert code == 2 and "--measure-denoiser" in capsys.readouterr().err
