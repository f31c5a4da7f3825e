"""Student-t intervals over seeds against scipy."""

import numpy as np
import pytest
from scipy import stats

from schedopt.metrics import mean_interval, t_quantile_975


@pytest.mark.parametrize("df", [1, 2, 3, 5, 9, 19, 30, 31, 45, 80, 200, 10_000])
def test_t_quantile_matches_scipy(df):
    # the table holds 4 decimals; beyond it the interpolation in 1/df is within 0.05%
    atol, rtol = (5e-5, 0) if df <= 30 else (0, 5e-4)
    np.testing.assert_allclose(t_quantile_975(df), stats.t.ppf(0.975, df), rtol=rtol, atol=atol)


def test_mean_interval_is_the_t_interval():
    values = np.random.default_rng(0).normal(3.0, 2.0, 7)
    r = mean_interval(values)
    lo, hi = stats.t.interval(0.95, 6, loc=values.mean(), scale=stats.sem(values))
    np.testing.assert_allclose([r["mean"] - r["ci95"], r["mean"] + r["ci95"]], [lo, hi], rtol=1e-5)
    assert mean_interval([2.0])["ci95"] is None


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")]])
def test_mean_interval_refuses_bad_values(bad):
    with pytest.raises(ValueError, match="`values` must be finite and non-empty"):
        mean_interval(bad)


def test_t_quantile_refuses_bad_df():
    with pytest.raises(ValueError, match="df=0"):
        t_quantile_975(0)
