"""Objective plug-ins of ``schedopt optimize``.

A plug-in is a module that defines ``NAME`` (its name in messages; the ``--objective``
value of the built-in ones), ``HELP`` (one line), ``add_arguments(group)`` (its own
options, added to an argparse group; option names must not clash with other plug-ins'),
``OPTIONS`` (the destinations of the plug-in options it reads, its own or another
plug-in's) and ``build(args) -> ObjectiveSetup`` (or an objective alone). A plug-in with a
sampler also defines ``solver_names()`` (the ``--solver`` values, from a solver registry)
and ``solver_fields(name)`` (the fields of that solver: the solver options ``--eta``,
``--kappa``, ``--process``, ``--noise`` apply where the solver has one); it may define
``check_options(args)``, which refuses combinations of its options that would be ignored.
``schedopt optimize`` refuses any plug-in option given that is not in the chosen
plug-in's ``OPTIONS``. Common options (``--num-steps``, ``--solver``, ``--final``,
``--sigma-min``, ``--sigma-max``, ``--seed``, ...) are defined by ``schedopt optimize``
itself and available in ``args`` (``args.num_steps``: sampler steps, not evaluations);
``args.given`` holds the destinations of the options given on the command line.

Plug-ins come from three places (:func:`load_plugin`):

- the modules of this package, discovered automatically (:func:`discover`), so adding a
  built-in objective touches no other file;
- the entry-point group :data:`ENTRY_POINT_GROUP` of installed distributions, each entry
  point loading a plug-in (``--objective`` takes the entry point's name; a built-in
  name is not overridden);
- a module on the command line, ``--objective module``, ``package.module`` or
  ``package.module:attribute`` (imported from the Python path).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from types import ModuleType
from typing import NamedTuple

from ...objectives.base import AbstractObjective

#: The entry-point group of objective plug-ins from other distributions.
ENTRY_POINT_GROUP = "schedopt.objectives"
#: What every plug-in defines (``solver_names``/``solver_fields`` come together or not at all).
REQUIRED = ("NAME", "HELP", "OPTIONS", "add_arguments", "build")


class ObjectiveSetup(NamedTuple):
    """What a plug-in's ``build`` returns: the objective, a data fingerprint for the card,
    reference schedules (name -> schedule) to compare against in the printed table, and
    whether the fit is small enough to compile quickly (:mod:`schedopt._compile`: its loop
    then runs a few times slower, in less time than XLA's optimisations take), and the
    process of the model the schedule is for (the card's ``process``: ``"ve"`` for EDM-style
    denoisers and the oracles, ``"vp"`` for a VP-conditioned network)."""

    objective: AbstractObjective
    fingerprint: str | dict | None = None
    references: dict = {}
    fast_compile: bool = False
    process: str = "ve"


def discover() -> dict[str, ModuleType]:
    """The built-in plug-ins: ``--objective`` name -> module."""
    plugins = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        plugins[module.NAME] = module
    return plugins


def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The plug-ins that installed distributions declare: name -> entry point (not loaded)."""
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in sorted(found, key=lambda ep: ep.name)}


def is_module_path(value: str) -> bool:
    """Whether an ``--objective`` value names a module (``a.b`` or ``a.b:attr``) rather
    than a plug-in by name.

    >>> is_module_path("mmd"), is_module_path("mypkg.energy"), is_module_path("energy:plugin")
    (False, True, True)
    """
    return "." in value or ":" in value


def load_plugin(
    value: str, builtins: dict[str, ModuleType], option: str = "--objective"
) -> ModuleType:
    """The plug-in that ``--objective value`` names: a built-in one, an entry point of
    :data:`ENTRY_POINT_GROUP`, or a module path (``package.module[:attribute]``). Raises
    a ``ValueError`` naming ``--objective`` and the value when it names none, cannot be
    imported, or does not follow the plug-in contract (``option`` begins the message).

    >>> load_plugin("gaussian-kl", discover()).NAME
    'gaussian-kl'
    >>> load_plugin("no-such-objective", {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --objective 'no-such-objective' is not an objective: choose one of ...
    """
    if value in builtins:
        return builtins[value]
    where = f"{option} {value!r}".lstrip()
    declared = entry_points()
    if value in declared:
        ep = declared[value]
        where = f"{where} (entry point {ep.value!r} of group {ENTRY_POINT_GROUP!r})"
        try:
            plugin = ep.load()
        except Exception as e:  # a broken third-party plug-in: say which and why
            raise ValueError(f"{where} could not be loaded: {type(e).__name__}: {e}") from None
    elif is_module_path(value) or value.isidentifier():
        plugin = _import_module_path(value, where, [*builtins, *declared])
    else:
        raise ValueError(_unknown(where, [*builtins, *declared]))
    check_plugin(plugin, where)
    return plugin


def _unknown(where: str, names) -> str:
    return (
        f"{where} is not an objective: choose one of {', '.join(names)}, or name a plug-in "
        "module (package.module or package.module:attribute, importable from the Python path)"
    )


def _import_module_path(value: str, where: str, names):
    name, _, attribute = value.partition(":")
    if not name or (":" in value and not attribute):
        raise ValueError(f"{where} must be package.module or package.module:attribute")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and name != e.name and not name.startswith(e.name + "."):
            raise ValueError(f"{where}: importing it failed: {e}") from None
        if not is_module_path(value):  # a bare name: a mistyped objective, most likely
            raise ValueError(_unknown(where, names)) from None
        raise ValueError(
            f"{where}: no module named {e.name!r} on the Python path (for a module in the "
            "current directory run with PYTHONPATH=.)"
        ) from None
    except Exception as e:  # the plug-in's own error: say where it came from
        raise ValueError(f"{where}: importing it failed: {type(e).__name__}: {e}") from None
    if not attribute:
        return module
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"{where}: module {name!r} has no attribute {attribute!r}") from None


def check_plugin(plugin, where: str = "the plug-in") -> None:
    """Refuse a plug-in that does not define what :mod:`schedopt.cli._objectives` asks.

    >>> check_plugin(object(), "--objective 'x'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --objective 'x' is not an objective plug-in: it lacks NAME, HELP, OPTIONS, ...
    """
    missing = [a for a in REQUIRED if not hasattr(plugin, a)]
    if missing:
        raise ValueError(
            f"{where} is not an objective plug-in: it lacks {', '.join(missing)} "
            '(see "Write your own objective" in the README)'
        )
    for attribute in ("add_arguments", "build", "check_options", "solver_names", "solver_fields"):
        if hasattr(plugin, attribute) and not callable(getattr(plugin, attribute)):
            raise ValueError(
                f"{where}: its {attribute} must be a function, got {getattr(plugin, attribute)!r}"
            )
    if hasattr(plugin, "solver_names") != hasattr(plugin, "solver_fields"):
        raise ValueError(f"{where}: define both solver_names and solver_fields, or neither")
    options = plugin.OPTIONS
    if isinstance(options, str) or not all(isinstance(o, str) for o in options):
        raise ValueError(
            f"{where}: its OPTIONS must be a tuple of option destinations (e.g. "
            f"('batch_size',)), got OPTIONS={options!r}"
        )
    for attribute in ("NAME", "HELP"):
        if not isinstance(getattr(plugin, attribute), str):
            raise ValueError(
                f"{where}: its {attribute} must be a string, got {getattr(plugin, attribute)!r}"
            )


def as_setup(built, where: str) -> ObjectiveSetup:
    """A plug-in's ``build`` result as an :class:`ObjectiveSetup` (an objective alone
    becomes one without fingerprint and references)."""
    if isinstance(built, AbstractObjective):
        return ObjectiveSetup(built)
    if isinstance(built, ObjectiveSetup) and isinstance(built.objective, AbstractObjective):
        return built._replace(references=dict(built.references or {}))
    raise ValueError(
        f"{where}: build(args) must return an ObjectiveSetup or an objective "
        f"(schedopt.objectives.AbstractObjective), got {built!r}"
    )
