"""The doctests of the command-line helpers and of the modules they rely on for checks,
locks, cards, checkpoints, exports, intervals, samplers and monotone schedules."""

import doctest
import importlib

import pytest

MODULES = [
    "schedopt.cli",
    "schedopt.cli._common",
    "schedopt.cli._rundir",
    "schedopt.io.atomic",
    "schedopt.io.card",
    "schedopt.io.checkpoint",
    "schedopt.optimize.loop",
    "schedopt.schedules.learnable",
    "schedopt.gaussian.spectrum",
    "schedopt.io.export",
    "schedopt.metrics.intervals",
    "schedopt.sampling",
    "schedopt.schedules.ranged",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
