"""Objective plug-ins of ``schedopt optimize``.

Each module here defines ``NAME`` (the ``--objective`` value), ``HELP`` (one line),
``add_arguments(group)`` (its own options, added to an argparse group; option names must
not clash with other plug-ins'), ``OPTIONS`` (the destinations of the plug-in options it
reads, its own or another plug-in's) and ``build(args) -> ObjectiveSetup``. A plug-in
with a sampler also defines ``solver_names()`` (the ``--solver`` values, from a solver
registry) and ``solver_fields(name)`` (the fields of that solver: the solver options
``--eta``, ``--kappa``, ``--process``, ``--noise`` apply where the solver has one); it may
define ``check_options(args)``, which refuses combinations of its options that would be
ignored. ``schedopt optimize`` refuses any plug-in option given that is not in the chosen
plug-in's ``OPTIONS``. Modules are discovered automatically, so adding an objective to
the command line touches no other file. Common options (``--nfe``, ``--solver``,
``--final``, ``--sigma-min``, ``--sigma-max``, ``--seed``, ...) are defined by
``schedopt optimize`` itself and available in ``args``; ``args.given`` holds the
destinations of the options given on the command line.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import NamedTuple

from ...objectives.base import AbstractObjective


class ObjectiveSetup(NamedTuple):
    """What a plug-in's ``build`` returns: the objective, a data fingerprint for the card,
    reference schedules (name -> schedule) to compare against in the printed table, and
    whether the fit is small enough to compile quickly (:mod:`schedopt._compile`: its loop
    then runs a few times slower, in less time than XLA's optimisations take)."""

    objective: AbstractObjective
    fingerprint: str | dict | None
    references: dict
    fast_compile: bool = False


def discover() -> dict[str, ModuleType]:
    """``--objective`` name -> plug-in module."""
    plugins = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        plugins[module.NAME] = module
    return plugins
