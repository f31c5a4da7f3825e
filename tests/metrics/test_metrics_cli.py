"""``schedopt evaluate`` on saved samples and on a trained model."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from schedopt.cli import main
from schedopt.data import load_dataset
from schedopt.io.card import make_card, save_card
from schedopt.schedules import EDM


@pytest.mark.slow
def test_evaluate_saved_samples(tmp_path, capsys):
    ds = load_dataset("ring")
    good = tmp_path / "good.npy"
    np.save(good, np.asarray(ds.distribution.sample(jax.random.key(1), 1000)))
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--samples", str(good), "--dataset", "ring", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed == json.loads(out.read_text())
    assert printed["metrics"]["modes_covered"] == 8
    assert "modes_covered" in captured.err  # the table
    collapsed = tmp_path / "collapsed.npy"
    np.save(collapsed, np.zeros((1000, 2), np.float32))
    assert main(["evaluate", "--samples", str(collapsed), "--dataset", "ring"]) == 0
    bad = json.loads(capsys.readouterr().out)["metrics"]
    assert bad["modes_covered"] == 0 and bad["sw2"] > printed["metrics"]["sw2"]


@pytest.mark.slow
def test_evaluate_a_trained_model(tmp_path, capsys):
    run = tmp_path / "run"
    train = [
        "train", "--dataset", "ring", "--out", str(run), "--num-train", "512", "--steps", "10",
        "--batch-size", "32", "--width", "16", "--depth", "1", "--sample-nfe", "0",
        "--no-progress",
    ]  # fmt: skip
    assert main(train) == 0
    capsys.readouterr()
    png = tmp_path / "s.png"
    args = ["evaluate", "--model", str(run), "--num-samples", "64", "--nfe", "5"]
    assert main([*args, "--png", str(png), "--solver", "euler", "--schedule", "cosine"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "ring" and result["nfe"] == 5 and result["sampler"] == "euler"
    assert result["schedule"]["family"] == "cosine"
    assert result["metrics"]["num_samples"] == 64 and png.stat().st_size > 0

    # steps and NFE: --num-steps counts steps; an --nfe Heun cannot meet is rounded down
    few = ["evaluate", "--model", str(run), "--num-samples", "16", "--solver", "heun"]
    assert main([*few, "--num-steps", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_steps"] == 3 and result["nfe"] == 5
    assert main([*few, "--nfe", "6"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["nfe"] == 5
    assert "cannot make exactly 6 evaluations; sampling with 3 steps (5 NFE)" in captured.err
    assert main([*few, "--nfe", "5", "--num-steps", "3"]) == 2
    assert "give --num-steps (sampler steps; got 3) or --nfe" in capsys.readouterr().err

    # a card: its solver, steps and grid end, on held-out seeds with t-intervals
    card = tmp_path / "card.json"
    save_card(card, make_card(EDM(rho=5.0), num_steps=3, final="min", solver="heun",
                              settings={"seed": 10_001}))  # fmt: skip
    with_card = ["evaluate", "--model", str(run), "--num-samples", "32", "--card", str(card)]
    assert main(with_card) == 2
    assert "includes the seed the card was fitted with (10001)" in capsys.readouterr().err
    assert main([*with_card, "--seed", "20000", "--seeds", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sampler"] == "heun" and result["num_steps"] == 3 and result["nfe"] == 6
    assert result["seeds"] == [20_000, 20_001, 20_002] and result["card"] == str(card)
    sw2 = result["intervals"]["sw2"]
    assert len(set(sw2["values"])) == 3 and sw2["ci95"] > 0
    np.testing.assert_allclose(result["metrics"]["sw2"], np.mean(sw2["values"]))
    # each seed's figure is that seed's own evaluation
    assert main([*with_card, "--seed", "20001", "--seeds", "1"]) == 0
    single = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(single["metrics"]["sw2"], sw2["values"][1], rtol=1e-6)
    assert main([*with_card, "--nfe", "4"]) == 2
    assert "--nfe cannot be given with --card" in capsys.readouterr().err
    assert main([*with_card, "--num-steps", "4"]) == 2
    assert "--num-steps cannot be given with --card" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, match",
    [
        (["--samples", "missing.npy", "--dataset", "ring"], "cannot read --samples"),
        (["--samples", "x.npy"], "--dataset is needed"),
        (["--model", "nowhere"], "network.json"),
    ],
)
def test_evaluate_errors(tmp_path, monkeypatch, capsys, args, match):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((10, 2)))
    assert main(["evaluate", *args]) == 2
    assert match in capsys.readouterr().err


def test_evaluate_rejects_an_unknown_schedule(tmp_path, capsys):
    from schedopt.cli.evaluate import parse_schedule

    assert parse_schedule("edm").family == "edm"
    with pytest.raises(ValueError, match="--schedule must be"):
        parse_schedule(str(tmp_path / "nothing.json"))
