"""The design-space experiment script (``p3_design_space.py``) runs end to end on its smoke size."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "experiments" / "p3_design_space.py"


@pytest.mark.slow
def test_p3_smoke(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["part_b"]["summary"]) == {"edm-lognormal/edm", "log-uniform/edm"}
    exact = [r for r in res["part_a"]["records"] if r["denoiser"] == "exact"]
    assert exact and all(r["score"] == 0.0 for r in exact)
    assert (tmp_path / "p3_design_space.png").stat().st_size > 1000
    assert "Part B" in (tmp_path / "tables.md").read_text()
