import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedopt.metrics import average_ranks, spearman


def test_ties_share_the_average_rank_and_inf_ranks_last():
    assert average_ranks([2.0, 1.0, 2.0, np.inf]).tolist() == [2.5, 1.0, 2.5, 4.0]
    assert spearman([1, 2, 3, 4], [1.0, 2.0, np.inf, np.inf]) == pytest.approx(
        np.corrcoef([1, 2, 3, 4], [1, 2, 3.5, 3.5])[0, 1]
    )


def test_constant_side_has_no_correlation():
    assert np.isnan(spearman([1, 2, 3], [5, 5, 5]))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="values"):
        average_ranks([1.0, float("nan")])
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2, 3], [1, 2])


@given(st.lists(st.integers(-(10**6), 10**6), min_size=3, max_size=12, unique=True))
def test_monotone_maps_keep_the_ranking(xs):
    x = np.asarray(xs, np.float64)
    assert spearman(x, 2.0 * x) == pytest.approx(1.0)  # exact doubling keeps the order
    assert spearman(x, -x) == pytest.approx(-1.0)
