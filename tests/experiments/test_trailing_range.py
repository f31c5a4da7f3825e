import numpy as np
import pytest


@pytest.fixture(scope="module")
def trailing(experiment_module):
    with experiment_module("trailing_range") as module:
        yield module


def test_grids_separate_range_from_spacing(trailing):
    g = trailing.grids(5)
    assert all(v.shape == (6,) and v[-1] == 0 and np.all(np.diff(v) < 0) for v in g.values())
    t, e = g["trailing"], g["edm"]
    # EDM on the trailing range shares its ends; the mapped trailing grid shares EDM's
    np.testing.assert_allclose(g["edm-on-trailing-range"][[0, 4]], t[[0, 4]], rtol=1e-5)
    np.testing.assert_allclose(g["trailing-on-edm-range"][[0, 4]], e[[0, 4]], rtol=1e-5)

    # ... and keeps the trailing grid's relative log spacing
    def shape(x):
        d = -np.diff(np.log(x[:5]))
        return d / d.sum()

    np.testing.assert_allclose(shape(g["trailing-on-edm-range"]), shape(t), rtol=1e-5)
    assert t[0] > 150 and t[4] > 0.5  # the DDPM table's top level; it stops early


def test_run_writes_rows_and_table(trailing, tmp_path):
    argv = ["--targets", "ring", "--solvers", "euler", "--nfe", "3", "--seeds", "1"]
    trailing.main([*argv, "--batch", "64", "--out", str(tmp_path)])
    rows = [line for line in (tmp_path / "rows.jsonl").read_text().splitlines() if line]
    assert len(rows) == 4
    assert "| ring | euler | 3 | sw2 |" in (tmp_path / "table.md").read_text()
    with pytest.raises(ValueError, match="--targets"):
        trailing.main(["--targets", "nope", "--out", str(tmp_path)])
