"""``--objective sliced-w2``: sliced Wasserstein-2 between samples and data
(a Gaussian-mixture oracle).

Options shared by the sample-based objectives (``--dataset``, ``--batch-size``, ...) are
defined in :mod:`schedopt.cli._objectives.trajectory`.
"""

from __future__ import annotations

from . import ObjectiveSetup
from .trajectory import sample_objective_setup

NAME = "sliced-w2"
HELP = "sliced Wasserstein-2 between samples and data"


def add_arguments(group) -> None:
    del group  # uses the shared options of the sample-based objectives


def build(args) -> ObjectiveSetup:
    return sample_objective_setup(args, NAME)
