"""``experiments/p1_constant_rate.py --smoke``: every part runs and writes its outputs."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "p1_constant_rate.py"


@pytest.mark.slow
def test_p1_experiment_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("p1_constant_rate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--smoke", "--out", str(tmp_path)])
    out = tmp_path / "smoke"
    for part in ("gmm", "digits", "training"):
        record = json.loads((out / f"{part}.json").read_text())
        assert record["rows"] and all("nfe" in r for r in record["rows"])
        assert (out / f"{part}.md").read_text().count("|") > 10
        assert (out / f"{part}.png").stat().st_size > 0
    gmm = json.loads((out / "gmm.json").read_text())
    names = {r["schedule"] for r in gmm["rows"]}
    assert {"crs-fd", "crs-x0", "crs-eps", "edm-rho7", "cosine", "logsnr-uniform"} <= names
    training = json.loads((out / "training.json").read_text())
    assert {r["trained"] for r in training["rows"]} == {
        "edm-lognormal (seed 0)",
        "crs-fd (seed 0)",
    }
