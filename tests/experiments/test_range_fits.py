import json

import pytest


@pytest.fixture(scope="module")
def range_fits(experiment_module):
    with experiment_module("range_fits") as module:
        yield module


@pytest.mark.slow
def test_smoke_cell_then_fits_from_the_best_grid_added_on_resume(range_fits, tmp_path):
    argv = ["--smoke", "--targets", "ring", "--solvers", "euler", "--nfe", "3"]
    argv += ["--objectives", "mmd"]  # trajectory's machinery: tests/objectives
    range_fits.main([*argv, "--out", str(tmp_path)])

    def strategies():
        lines = (tmp_path / "rows.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if line]

    first = strategies()
    names = {r["strategy"] for r in first}
    assert set(range_fits.BASELINES) <= names
    assert {"mmd", "mmd+range"} <= names
    assert not any(n.startswith(("sliced-w2", "trajectory")) for n in names)  # not asked for
    assert all(r["sw2"]["mean"] > 0 and len(r["sw2"]["seeds"]) == 2 for r in first)
    # a resumed run adds only the fits started from the best grid of the search seeds
    range_fits.main([*argv, "--out", str(tmp_path), "--resume", "--from-best"])
    added = strategies()[len(first) :]
    assert {r["strategy"] for r in added} == {"mmd+range@best"}
    assert all(r["start"] in range_fits.BASELINES for r in added)
    lo, hi = range_fits.BOUNDS
    assert all(lo <= r["sigma_range"][0] < r["sigma_range"][1] <= hi for r in added)
    summary = json.loads((tmp_path / "summary.json").read_text())
    (cell,) = summary["cells"]
    assert cell["best_baseline"] in range_fits.BASELINES
    assert cell["objectives"]["mmd"]["range_from_best"] is not None
    assert summary["goal_cells"] == 1
    # --kl adds only the closed-form KL fits; every row carries its grid and its KL
    range_fits.main([*argv, "--out", str(tmp_path), "--resume", "--kl"])
    rows = strategies()
    added = rows[len(first) + 1 :]
    assert {r["strategy"] for r in added} == set(range_fits.KL_FITS)
    by_name = {r["strategy"]: r for r in rows}
    for r in rows:
        assert len(r["sigmas"]) == r["steps"] + 1 and r["sigmas"][-1] == 0.0
        assert all(a > b for a, b in zip(r["sigmas"], r["sigmas"][1:], strict=False))
        assert r["gaussian_kl"] > 0
    # the fit on [0.002, 80] lowers the KL of the EDM grid its cubic starts from
    assert by_name["gaussian-kl"]["gaussian_kl"] < by_name["edm-rho7"]["gaussian_kl"]
    (cell,) = json.loads((tmp_path / "summary.json").read_text())["cells"]
    kls = {n: r["gaussian_kl"] for n, r in by_name.items()}
    assert cell["kl"]["kl_best"] == min(kls, key=kls.get)
    ratio = cell["paired_ratio"]["mean"]
    assert abs(ratio - cell["best_fit_value"] / cell["best_baseline_value"]) < 0.5 * ratio
    text = (tmp_path / "table.md").read_text()
    assert "KL-best grid" in text and "range-learned best" in text
    # --time-inputs adds the fit from the best grid with the denoiser's time inputs learned;
    # validated, it records the validation history from its start and the step it kept
    validated = ["--validation-batch", "32", "--validation-every", "2"]
    range_fits.main([*argv, "--out", str(tmp_path), "--resume", "--time-inputs", "2", *validated])
    (timed,) = strategies()[len(rows) :]
    assert timed["strategy"] == "mmd+range+time@best" and timed["start"] in range_fits.BASELINES
    assert len(timed["time_offsets"]) == 2 and "gaussian_kl" not in timed
    steps = [step for step, _ in timed["validation"]]
    assert steps[0] == 0 and steps[-1] == 5 and timed["kept_step"] in steps
    assert timed["iterations"] == 5 and timed["lr"] > 0  # the fit records its settings
    with pytest.raises(ValueError, match="validation-batch"):
        range_fits.main([*argv, "--out", str(tmp_path), "--validation-batch", "-1"])
    with pytest.raises(ValueError, match="time-inputs"):
        range_fits.main([*argv, "--out", str(tmp_path), "--time-inputs", "1"])
