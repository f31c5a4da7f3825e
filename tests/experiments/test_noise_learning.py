"""experiments/noise_learning.py end to end on a tiny network: trains an arm with a
learned noise, evaluates it on held-out seeds, resumes, and writes the tables."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_noise_learning_smoke_trains_evaluates_and_resumes(tmp_path, experiment_module):
    with experiment_module("noise_learning") as module:
        out, models = tmp_path / "out", tmp_path / "models"
        argv = ["--smoke", "--arms", "edm,adaptive", "--train-seeds", "0",
                "--out", str(out), "--models", str(models)]  # fmt: skip
        assert module.main(argv) == 0
        rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
        assert {(r["arm"], r["solver"], r["nfe"]) for r in rows} == {
            (arm, solver, nfe)
            for arm in ("edm", "adaptive")
            for solver, nfe in (module.FIXED, module.FEW_STEP[0])
        }
        few = next(r for r in rows if r["arm"] == "adaptive" and r["solver"] == "dpmpp-2m")
        assert few["schedule"] == min(few["search"], key=few["search"].get)
        assert (models / "adaptive-seed0" / "DONE").exists()
        info = json.loads((models / "adaptive-seed0" / "train.json").read_text())
        assert set(info["learned_density"]) and info["arm"] == "adaptive"
        # a second run finds every (arm, seed) done: nothing is added
        assert module.main(argv) == 0
        assert len((out / "rows.jsonl").read_text().splitlines()) == len(rows)
        summary = json.loads((out / "summary.json").read_text())
        cell = next(c for c in summary["cells"] if c["solver"] == "dpmpp-2m")
        assert set(cell["arms"]) == {"edm", "adaptive"}
        assert cell["arms"]["adaptive"]["ratio_to_edm"]["n"] == 1
        assert "| dpmpp-2m | 5 |" in (out / "table.md").read_text()
