"""``schedopt evaluate`` on saved samples and on a trained model."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from schedopt.cli import main
from schedopt.data import load_dataset


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
    assert main([*args, "--png", str(png), "--sampler", "euler", "--schedule", "cosine"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "ring" and result["nfe"] == 5 and result["sampler"] == "euler"
    assert result["schedule"]["family"] == "cosine"
    assert result["metrics"]["num_samples"] == 64 and png.stat().st_size > 0


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
