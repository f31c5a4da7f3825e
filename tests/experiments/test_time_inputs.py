import json

import pytest


@pytest.mark.slow
def test_smoke_compares_the_fit_with_and_without_time_inputs_on_held_out_seeds(
    experiment_module, tmp_path
):
    with experiment_module("time_inputs") as module:
        (row,) = module.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert saved == json.loads(json.dumps([row]))  # what was printed is what was written
    assert len(row["range"]["sw2"]) == len(row["range+time"]["sw2"]) == 2
    assert all(v > 0 for v in row["range"]["sw2"] + row["range+time"]["sw2"])
    assert len(row["range+time"]["offsets"]) == 6 and "offsets" not in row["range"]
    assert any(o != 0 for o in row["range+time"]["offsets"])  # the fit moved them
    expected = [b / a for a, b in zip(row["range"]["sw2"], row["range+time"]["sw2"], strict=True)]
    assert row["ratio"]["values"] == pytest.approx(expected)
    assert "| ring | euler | 3 |" in (tmp_path / "table.md").read_text()
