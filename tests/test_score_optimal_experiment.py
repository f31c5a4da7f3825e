"""The score-optimal experiment script runs end to end (``--smoke``: tiny sizes, every part)."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "p4_score_optimal.py"


@pytest.mark.slow
def test_p4_experiment_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("p4_score_optimal", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--smoke", "--out", str(tmp_path)]) == 0
    out = tmp_path / "smoke"
    for part in ("toy", "gmm", "online", "digits"):
        record = json.loads((out / f"{part}.json").read_text())
        assert record["rows"], part
        assert (out / f"{part}.md").stat().st_size > 0 and (out / f"{part}.png").exists()
    toy = json.loads((out / "toy.json").read_text())
    assert {r["schedule"] for r in toy["rows"]} >= {
        "equal-corrector",
        "equal-predictor",
        "edm-rho7",
    }
    online = json.loads((out / "online.json").read_text())
    assert len(online["history"]) > 1 and "cost_spread" in online["history"][0]
