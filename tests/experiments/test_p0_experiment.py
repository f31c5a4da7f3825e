"""The Gaussian-KL experiment script (``p0_gaussian_kl.py``) runs end to end on its smoke size."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "experiments" / "p0_gaussian_kl.py"


@pytest.mark.slow
def test_p0_smoke(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [r["steps"] for r in rows] == [3, 5]
    assert all(r["learned"] > 0 and r["edm-rho7"] > 0 for r in rows)
    assert (tmp_path / "kl_vs_nfe.png").stat().st_size > 1000
