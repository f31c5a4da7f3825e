"""The discrete-noise experiment's ``--smoke`` run: it completes, writes its outputs, and its
Monte Carlo check agrees with the closed form for every noise type."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "p2_discrete_noise.py"


@pytest.mark.slow
def test_smoke_run(tmp_path):
    spec = importlib.util.spec_from_file_location("p2_discrete_noise", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--smoke", "--out", str(tmp_path)])
    for name in ("results.json", "table.md", "p2_discrete_noise.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["mixture"]["rows"]) == {
        f"{noise}/{kappa}"
        for noise in ("gaussian", "rademacher", "uniform")
        for kappa in (0.5, 1.0)
    }
    for noise, check in results["gaussian"]["monte_carlo_check"]["by_noise"].items():
        assert check["max_abs_z_mean"] < 5 and check["max_abs_z_variance"] < 5, (noise, check)
    kurtosis = results["gaussian"]["max_abs_excess_kurtosis"]
    assert kurtosis["gaussian"] == [0.0, 0.0] and kurtosis["rademacher"][0] > 0
    assert (
        "Command: `python experiments/p2_discrete_noise.py --smoke`"
        in (tmp_path / "table.md").read_text()
    )
