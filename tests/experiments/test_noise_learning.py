"""experiments/noise_learning.py end to end on a tiny network: trains an arm with a
learned noise, evaluates it on held-out seeds, resumes, and writes the tables."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_noise_learning_smoke_trains_evaluates_and_resumes(tmp_path, experiment_module):
    with experiment_module("noise_learning") as module:
        out, models = tmp_path / "out", tmp_path / "models"
        argv = ["--smoke", "--arms", "adaptive", "--train-seeds", "0",
                "--out", str(out), "--models", str(models)]  # fmt: skip
        assert module.main(argv) == 0
        rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
        assert {(r["arm"], r["solver"], r["nfe"]) for r in rows} == {
            (arm, solver, nfe)
            for arm in ("adaptive",)
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
        assert "| dpmpp-2m | 5 |" in (out / "table.md").read_text()


def test_summary_pairs_each_arm_with_edm_by_training_seed(experiment_module):
    with experiment_module("noise_learning") as module:
        rows = [
            {"arm": arm, "train_seed": seed, "solver": "heun", "nfe": 35, "fd_seeds": [fd, fd]}
            for arm, seed, fd in [
                ("edm", 0, 10.0), ("edm", 1, 20.0), ("vdm", 0, 8.0), ("vdm", 1, 18.0),
                ("crs", 1, 30.0),
            ]
        ]  # fmt: skip
        cell = module.summarize(rows)["cells"][0]
        assert cell["arms"]["vdm"]["fd"]["mean"] == 13.0
        assert cell["arms"]["vdm"]["ratio_to_edm"]["values"] == [0.8, 0.9]
        assert cell["arms"]["crs"]["ratio_to_edm"]["values"] == [1.5]  # seed 1 only
        assert "ratio_to_edm" not in cell["arms"]["edm"]
        text = module.table(module.summarize(rows), {"edm": [100.0, 110.0]})
        assert "| heun | 35 | 15 ± 64 (n=2) | 13 ± 64 (n=2) |" in text
