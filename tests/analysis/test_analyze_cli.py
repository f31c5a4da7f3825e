"""``schedopt analyze``."""

import json

import pytest

from schedopt.cli import main


def test_analyze_prints_the_three_terms(capsys):
    code = main(
        [
            "analyze",
            "--schedule",
            "song",
            "--solver",
            "euler",
            "--num-steps",
            "6",
            "--score-error",
            "0.05",
            "--num-samples",
            "64",
            "--reference-steps",
            "16",
            "--json",
        ]
    )
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["score"] > 0 and record["discretisation"] > 0 and record["initialisation"] > 0
    assert record["total"] <= record["sum_of_terms"] + 1e-6
    assert record["nfe"] == 6 and record["num_steps"] == 6 and record["solver"] == "euler"


@pytest.mark.slow
def test_analyze_exact_score_stochastic_text_output(capsys):
    code = main(
        [
            "analyze",
            "--rho",
            "3",
            "--sampler",  # the deprecated spelling of --solver
            "euler-maruyama",
            "--num-steps",
            "8",
            "--num-samples",
            "32",
            "--reference-steps",
            "16",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("E_S = 0 ") and "E_I = " in captured.out
    assert "warning: --sampler is deprecated: write --solver" in captured.err


@pytest.mark.parametrize(
    "argv, match",
    [(["--score-error", "-1"], "score-error"), (["--num-steps", "0"], "num-steps")],
)
def test_analyze_bad_input_is_a_clean_error(capsys, argv, match):
    assert main(["analyze", "--num-samples", "8", *argv]) != 0
    assert match in capsys.readouterr().err


@pytest.mark.slow
def test_analyze_a_trained_network_on_a_card_schedule(tmp_path, capsys):
    from schedopt.io.card import make_card, save_card
    from schedopt.schedules import EDM

    run = tmp_path / "ring"
    assert (
        main(
            [
                "train",
                "--dataset",
                "ring",
                "--out",
                str(run),
                "--steps",
                "30",
                "--batch-size",
                "64",
                "--width",
                "32",
                "--depth",
                "1",
                "--no-progress",
                "--num-samples",
                "16",
                "--sample-nfe",
                "4",
            ]
        )
        == 0
    )
    save_card(tmp_path / "card.json", make_card(EDM(rho=5.0), num_steps=6))
    capsys.readouterr()
    argv = [
        "analyze",
        "--denoiser",
        str(run),
        "--card",
        str(tmp_path / "card.json"),
        "--num-steps",
        "6",
        "--num-samples",
        "64",
        "--reference-steps",
        "16",
        "--json",
    ]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["denoiser"] == str(run) and record["schedule"].startswith("card:")
    assert record["score"] > 0  # a 30-step network is far from the exact denoiser
    assert main(["analyze", "--denoiser", str(tmp_path), "--num-steps", "3"]) == 2
