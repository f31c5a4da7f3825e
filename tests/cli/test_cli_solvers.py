"""Every solver name reaches the command line: `schedopt kl` and `schedopt optimize`."""

import json

import numpy as np
import pytest

from schedopt.cli import main
from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid

SIGMAS = [80.0, 10.0, 1.0, 0.1, 0.0]


@pytest.mark.parametrize("solver", ["dpmpp-2m", "dpmpp-3m", "unipc", "ipndm", "dpmpp-2m-sde"])
def test_kl_takes_the_multistep_solvers(capsys, solver):
    argv = ["kl", "--sigmas", ",".join(map(str, SIGMAS)), "--eigenvalues", "0.5,1,2"]
    assert main([*argv, "--solver", solver, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    expected = gaussian_kl(Spectrum([0.5, 1.0, 2.0]), sigma_grid(SIGMAS), solver)
    np.testing.assert_allclose(record["kl"], float(expected), rtol=1e-6)
    assert record["solver"] == solver


def test_optimize_fits_a_multistep_solver(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["optimize", "--solver", "unipc", "--num-steps", "5", "--iterations", "60"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    card = json.loads((out / "schedule.json").read_text())
    assert card["solver"] == "unipc" and card["objective"]["solver"] == "unipc"
    comparison = card["settings"]["comparison"]
    assert comparison["learned"] < comparison["edm-rho7"]
