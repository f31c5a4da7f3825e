import json

import pytest


@pytest.fixture(scope="module")
def headline(experiment_module):
    with experiment_module("headline") as module:
        yield module


def _row(strategy, kind, seeds, nfe=5, solver="euler", target="ring", build_s=1.0):
    mean = sum(seeds) / len(seeds)
    return dict(
        target=target, solver=solver, nfe=nfe, nfe_used=nfe, steps=nfe, strategy=strategy,
        kind=kind, build_s=build_s, sw2={"mean": mean, "ci95": 0.1, "seeds": seeds},
    )  # fmt: skip


def test_summary_pairs_the_best_of_each_kind_by_seed_and_applies_the_goal(headline):
    rows = [
        _row("edm-rho7", "baseline", [2.0, 2.0, 2.0]),
        _row("edm-best-range", "baseline", [1.0, 2.0, 1.0]),
        _row("gaussian-kl", "schedopt", [3.0, 3.0, 3.0]),
        _row("sliced-w2+range@best", "schedopt", [0.5, 1.0, 0.5]),
        # NFE 10: schedopt worse than the best baseline beyond the interval
        _row("edm-rho7", "baseline", [1.0, 1.0, 1.0], nfe=10),
        _row("dp-kl", "schedopt", [1.5, 1.6, 1.5], nfe=10),
    ]
    low, high = headline.summarize(rows)
    assert (low["best_baseline"], low["best_schedopt"]) == (
        "edm-best-range",
        "sliced-w2+range@best",
    )
    assert low["ratio"] == pytest.approx(0.5)  # paired: every seed's ratio is 0.5
    assert low["ratio_ci"] == pytest.approx(0.0, abs=1e-12)
    assert low["goal"] is True
    assert high["ratio"] == pytest.approx((1.5 + 1.6 + 1.5) / 3)
    assert high["goal"] is False
    table = headline.headline_table([low, high], "ring")
    assert "Goal met in 1 of 2 cells" in table and table.count("✗") == 2  # row + legend


def test_a_diverged_grid_loses_and_a_zero_baseline_leaves_no_ratio(headline):
    inf = {"mean": float("inf"), "ci95": None, "seeds": [float("inf"), 1.0]}
    rows = [
        _row("edm-rho7", "baseline", [1.0, 1.0]),
        _row("gaussian-kl", "schedopt", [2.0, 2.0]),
        _row("sliced-w2+range@best", "schedopt", [1.0, 1.0]) | {"sw2": inf},
    ]
    (cell,) = headline.summarize(rows)
    assert cell["best_schedopt"] == "gaussian-kl" and cell["ratio"] == pytest.approx(2.0)
    zero = {"mean": 0.0, "ci95": None, "seeds": [0.0, 0.0]}
    (cell,) = headline.summarize([*rows, _row("gits", "baseline", [0.0, 0.0]) | {"sw2": zero}])
    assert cell["best_baseline"] == "gits" and "ratio" not in cell and "goal" not in cell


def test_readme_block_is_replaced_and_a_readme_without_one_is_refused(headline, tmp_path):
    summary = headline.summarize(
        [_row("edm-rho7", "baseline", [2.0, 2.0]), _row("dp-kl", "schedopt", [1.0, 1.0])]
    )
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{headline.README_START}\nold\n{headline.README_END}\ntail\n")
    headline.update_readme(readme, summary, tmp_path / "out")
    text = readme.read_text()
    assert "old" not in text and text.endswith("tail\n") and "| euler | 5 | edm-rho7 |" in text
    assert "out/ring.png" in text
    readme.write_text("# no block\n")
    with pytest.raises(ValueError, match="--readme"):
        headline.update_readme(readme, summary, tmp_path)


@pytest.mark.slow
def test_smoke_run_has_every_strategy_reuses_equal_budgets_and_writes_the_headline(
    headline, tmp_path
):
    out = ["--smoke", "--all-nfe", "--out", str(tmp_path)]
    headline.main([*out, "--time-inputs", "0"])  # ring, Heun and DPM-Solver++(2M), NFE 3
    # Heun buys 2 steps (3 NFE) with 3 or 4 evaluations: the cell is reused, not rerun; the
    # finished Heun 3 cell gets the time-input fit it lacked, from its recorded start
    headline.main([*out, "--resume", "--solvers", "heun", "--nfe", "3,4"])
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    by_cell = {}
    for r in rows:
        by_cell.setdefault((r["solver"], r["nfe"]), {})[r["strategy"]] = r
    assert set(by_cell) == {("heun", 3), ("heun", 4), ("dpmpp-2m", 3)}
    expected = set(headline.BASELINES) | set(headline.MODEL_FREE)
    expected |= {"all-nfe", "sliced-w2+range@best", "sliced-w2+range+time@best"}
    assert set(by_cell["dpmpp-2m", 3]) == expected - {"sliced-w2+range+time@best"}
    assert set(by_cell["heun", 3]) == expected - {"dmn"}  # DMN's bound: multistep only
    added = by_cell["heun", 3]["sliced-w2+range+time@best"]
    assert added["added_to_finished_cell"]
    assert added["start"] == by_cell["heun", 3]["sliced-w2+range@best"]["start"]
    four, three = by_cell["heun", 4], by_cell["heun", 3]
    assert set(four) == set(three) and all(r["nfe_used"] == 3 for r in four.values())
    assert all(four[k]["sw2"] == three[k]["sw2"] for k in four)
    assert len(rows) == 2 * len(three) + len(by_cell["dpmpp-2m", 3])  # no row twice
    assert all(len(r["sw2"]["seeds"]) == 2 for r in rows)
    assert all(r["kind"] == headline.kind_of(r["strategy"]) for r in rows)
    lo, hi = headline.BOUNDS
    fits = [r for r in rows if r["strategy"].startswith(("all-nfe", "sliced-w2+range"))]
    assert all(lo <= r["sigma_range"][0] < r["sigma_range"][1] <= hi for r in fits)
    # the per-cell fit is validated on fresh samples from its start (step 0) on, and the
    # kept iterate is one of the validated ones
    for r in (r for r in fits if r["strategy"].endswith("@best")):
        steps = [s for s, _ in r["validation"]]
        assert steps[0] == 0 and steps[-1] == 5 and r["kept_step"] in steps
        assert (r["iterations"], r["objective_batch"]) == (5, 64)  # the fit's own settings
    summary = json.loads((tmp_path / "summary.json").read_text())["cells"]
    assert {(c["solver"], c["nfe"]) for c in summary} == set(by_cell)
    assert (tmp_path / "ring.png").stat().st_size > 0
    assert "| dpmpp-2m | 3 |" in (tmp_path / "headline.md").read_text()


def test_a_finished_cells_start_is_rebuilt_from_its_rows_or_refused(headline):
    cell = {"edm-best-range": {"search": {"best": [0.2, 5.0]}}}
    start = headline.recorded_start(cell, "edm-best-range", 4)
    assert (float(start.sigma_min), float(start.sigma_max)) == (0.2, 5.0)
    assert float(headline.recorded_start(cell, "cosine", 4).sigma_max) == headline.SIGMA_MAX
    with pytest.raises(ValueError, match="'gits'"):
        headline.recorded_start(cell, "gits", 4)
    args = type("Args", (), {"time_inputs": 6})()
    fit = {"frechet+range@best": {"start": "cosine"}}
    assert headline.missing_time_fit(fit, args) == "frechet+range@best"
    assert headline.missing_time_fit({**fit, "frechet+range+time@best": {}}, args) is None
    args.time_inputs = 0
    assert headline.missing_time_fit(fit, args) is None
