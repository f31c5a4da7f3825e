"""``--objective frechet``: Frechet distance of Gaussians fitted to samples and data
(a Gaussian-mixture oracle).

Options shared by the sample-based objectives (``--dataset``, ``--batch-size``, ...) are
defined in :mod:`schedopt.cli._objectives.trajectory`.
"""

from __future__ import annotations

from . import ObjectiveSetup, trajectory

NAME = "frechet"
HELP = "Frechet distance of Gaussians fitted to samples and data"
OPTIONS = trajectory.DISCREPANCY_OPTIONS
solver_names = trajectory.solver_names
solver_fields = trajectory.solver_fields
check_options = trajectory.check_options


def add_arguments(group) -> None:
    del group  # uses the shared options of the sample-based objectives


def build(args) -> ObjectiveSetup:
    return trajectory.sample_objective_setup(args, NAME)
