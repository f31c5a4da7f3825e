import importlib.util
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).parents[2] / "experiments" / "nfe_sweep.py"


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("nfe_sweep", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_steps_within_budget(sweep):
    assert [sweep.num_steps_for("heun", n) for n in (3, 4, 5, 10)] == [2, 2, 3, 5]
    assert sweep.num_steps_for("euler", 7) == 7


def test_trailing_schedule_spacing(sweep):
    from schedopt.schedules import grid

    levels = np.asarray(grid(sweep.trailing_schedule(4), 4))
    assert levels.shape == (5,) and levels[-1] == 0 and np.all(np.diff(levels) < 0)


def test_summarise_ranks_and_spearman(sweep):
    rows = [
        dict(target="t", solver="euler", nfe=3, strategy=s, gaussian_kl=k, sw2=w)
        for s, k, w in [("a", 1.0, 3.0), ("b", 2.0, 2.0), ("c", 3.0, 1.0)]
    ]
    (cell,) = sweep.summarise(rows)
    assert cell["spearman"] == pytest.approx(-1.0)
    assert cell["kl_selected"] == "a" and cell["sw2_best"] == "c"
    assert cell["kl_selected_sw2_rank"] == 3 and not cell["kl_selected_wins"]


@pytest.mark.slow
def test_smoke_run_writes_outputs(sweep, tmp_path):
    argv = ["--targets", "ring", "--solvers", "euler", "--nfe", "3", "--seeds", "1"]
    rows, summary = sweep.main(
        [*argv, "--batch", "64", "--iterations", "3", "--out", str(tmp_path)]
    )
    assert {r["strategy"] for r in rows} >= {"edm-rho7", "dp-kl", "ays", "gaussian-kl"}
    assert (tmp_path / "table.md").exists() and (tmp_path / "sw2_vs_nfe.png").exists()
    assert len(summary) == 1
