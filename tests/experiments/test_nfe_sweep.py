import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).parents[2] / "experiments" / "nfe_sweep.py"


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("nfe_sweep", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
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
    assert cell["spearman_sw2"] == pytest.approx(-1.0)
    assert cell["kl_selected"] == "a" and cell["sw2_best"] == "c"
    assert cell["kl_selected_sw2_rank"] == 3 and not cell["kl_selected_wins"]
    assert cell["metric"] == "sw2" and "spearman_fd" not in cell


def test_fd_is_the_headline_metric_where_present(sweep):
    rows = [
        dict(target="t", solver="heun", nfe=5, strategy=s, gaussian_kl=k, sw2=w, fd=f)
        for s, k, w, f in [("a", 1.0, 3.0, 1.0), ("b", 2.0, 2.0, 2.0), ("c", 3.0, 1.0, 3.0)]
    ]
    (cell,) = sweep.summarise(rows)
    assert cell["metric"] == "fd" and cell["kl_selected_wins"]
    assert cell["spearman_fd"] == pytest.approx(1.0)


def test_tightest_budget_is_the_smallest_nfe(sweep):
    summary = [
        dict(target="t", solver="euler", nfe=n, kl_selected_wins=n == 5) for n in (10, 5, 20)
    ]
    (cell,) = sweep.tightest_budgets(summary)
    assert cell["nfe"] == 5


def _rows(target, nfe):
    return [
        dict(target=target, solver="euler", nfe=nfe, strategy=s, gaussian_kl=k, sw2=w, mmd=w)
        for s, k, w in [("a", 1.0, 3.0), ("b", 2.0, 2.0), ("c", 3.0, 1.0)]
    ]


def _write_rows(path, rows, cut_line=False):
    import json

    text = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(text + ('{"target": "cut' if cut_line else ""))


def test_summarize_merges_rows_files_and_runs_nothing(sweep, tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _write_rows(first, _rows("ring", 3), cut_line=True)  # an interrupted run's last line
    _write_rows(second, _rows("gmm64", 5))
    out = tmp_path / "out"
    rows, summary = sweep.main(["--summarize", f"{first},{second}", "--out", str(out)])
    assert len(rows) == 6 and [(c["target"], c["nfe"]) for c in summary] == [
        ("gmm64", 5),
        ("ring", 3),
    ]
    assert "| ring | euler | 3 |" in (out / "table.md").read_text()
    with pytest.raises(ValueError, match="--summarize"):
        sweep.main(["--summarize", str(tmp_path / "missing.jsonl"), "--out", str(out)])


def test_summarize_takes_a_cell_from_the_last_file_that_has_it(sweep, tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _write_rows(first, _rows("ring", 3) + _rows("ring", 5))
    rerun = _rows("ring", 3) + [dict(_rows("ring", 3)[0], strategy="extra", gaussian_kl=9.0)]
    _write_rows(second, rerun)
    rows, summary = sweep.main(["--summarize", f"{first},{second}", "--out", str(tmp_path)])
    by_cell = {c["nfe"]: c["strategies"] for c in summary}
    assert by_cell == {3: 4, 5: 3} and len(rows) == 7


def test_resume_skips_finished_cells(sweep, tmp_path):
    _write_rows(tmp_path / "rows.jsonl", _rows("ring", 3))
    argv = ["--targets", "ring", "--solvers", "euler", "--nfe", "3", "--resume"]
    rows, summary = sweep.main([*argv, "--out", str(tmp_path)])  # nothing left to run
    assert len(rows) == 3 and summary[0]["kl_selected"] == "a"
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 3


def test_bad_arguments_name_the_flag(sweep, tmp_path):
    with pytest.raises(ValueError, match="--targets"):
        sweep.main(["--targets", "cifar", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="--nfe"):
        sweep.main(["--nfe", "0,3", "--out", str(tmp_path)])


@pytest.mark.slow
def test_smoke_run_writes_outputs(sweep, tmp_path):
    argv = ["--targets", "ring", "--solvers", "euler", "--nfe", "3", "--seeds", "1"]
    argv += ["--objective-nfe", "3", "--objective-iterations", "2", "--objective-batch", "32"]
    argv += ["--cost-samples", "64", "--batch", "64", "--iterations", "3"]
    rows, summary = sweep.main([*argv, "--out", str(tmp_path)])
    strategies = {r["strategy"] for r in rows}
    assert strategies >= {"edm-rho7", "dp-kl", "ays", "gaussian-kl", "constant-rate"}
    assert strategies >= {"score-work", "trajectory", "mmd", "sliced-w2", "frechet"}
    assert all(np.isfinite(r["sw2"]) and np.isfinite(r["mmd"]) for r in rows)
    for name in ("table.md", "metrics.md", "summary.json", "sw2_vs_nfe.png"):
        assert (tmp_path / name).exists()
    assert len(summary) == 1


def test_discrepancy_objectives_compare_what_the_metrics_compare(sweep):
    x = np.array([[-3.0, 0.5], [2.0, -0.25]])
    common = dict(denoiser=None, spectrum=None, event_shape=(2,), train=x, reference=x)
    oracle = sweep.Target("oracle", **common)
    assert sweep.metric_space(oracle, "mmd") is None  # raw samples
    images = sweep.Target("images", **common, features=lambda y: 10 * y, clip=1.0)
    np.testing.assert_allclose(sweep.metric_space(images, "sliced-w2")(x), np.clip(x, -1, 1))
    np.testing.assert_allclose(sweep.metric_space(images, "frechet")(x), 10 * np.clip(x, -1, 1))
