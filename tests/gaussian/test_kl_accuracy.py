"""float32 accuracy of the Gaussian KL against float64, beside the form it replaced
(schedopt.cli._kl_reference.previous_kl): ``schedopt bench --sections kl_accuracy`` on
fewer grids."""

import numpy as np
import pytest

from schedopt._compile import fast_compile_options
from schedopt.cli._kl_bench import NEAR_ZERO, kl_accuracy

STEPS = (3, 20)
# tiny programs: compiled quickly (the bench measures XLA's default compile)
OPTIONS = fast_compile_options()
# a few float32 roundings of relative error
SLACK = 1e-6


@pytest.mark.parametrize("solver", ["euler", "heun", "ancestral"])
def test_single_step_forms_are_as_accurate_as_before_in_every_case(solver):
    row = kl_accuracy(STEPS, [solver], OPTIONS)["by_solver"][solver]
    resolvable, near_zero = row["resolvable"], row["near_zero"]
    assert resolvable["schedopt_worse_cases"] == 0, resolvable
    assert resolvable["schedopt"]["max"] <= resolvable["previous_form"]["max"] + SLACK
    # KLs near 0: the carried defect 1 - w keeps the relative error at float32's level,
    # where the previous form's (expm1(-l) + l) / 2 cancelled
    assert near_zero["min_kl"] < NEAR_ZERO
    assert near_zero["schedopt"]["max"] < 1e-5 < near_zero["previous_form"]["max"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "solver", ["euler-maruyama", "dpmpp-2m", "dpmpp-3m", "unipc", "ipndm", "dpmpp-2m-sde"]
)
def test_other_forms_are_no_less_accurate_than_before(solver):
    row = kl_accuracy(STEPS, [solver], OPTIONS)["by_solver"][solver]
    resolvable = row["resolvable"]
    assert resolvable["schedopt"]["max"] <= resolvable["previous_form"]["max"] + SLACK
    assert np.isfinite(resolvable["schedopt"]["median"])
