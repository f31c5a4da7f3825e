"""The ``schedopt`` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds an ``argparse`` sub-parser whose ``func`` default is
the function to run with the parsed arguments (returning an exit code). Modules are
discovered automatically, so adding a subcommand touches no other file; a run imports only
the module of its own subcommand (``schedopt --help`` imports them all).

Every subcommand takes ``--no-compile-cache``: compiled programs are otherwise kept on disk
between runs (:mod:`schedopt.cli._cache`; ``SCHEDOPT_COMPILE_CACHE`` moves or disables it).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def command_names() -> list[str]:
    """The subcommands, one per public module of this package.

    >>> "optimize" in command_names()
    True
    """
    names = (info.name for info in pkgutil.iter_modules(__path__))
    return sorted(name for name in names if not name.startswith("_"))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or only of ``command`` (its module alone imported)."""
    parser = argparse.ArgumentParser(
        prog="schedopt",
        description="Learn diffusion noise schedules and sampling discretisations.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = command_names()
    for name in [command] if command in names else names:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(sub)
    for subparser in sub.choices.values():
        subparser.add_argument(
            "--no-compile-cache",
            action="store_true",
            help="do not keep compiled programs on disk between runs "
            "(also: SCHEDOPT_COMPILE_CACHE=off)",
        )
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The first argument if it names a subcommand (then only its module is imported)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ._cache import configure_compile_cache

    configure_compile_cache(disabled=args.no_compile_cache)
    try:
        return int(args.func(args) or 0)
    except ValueError as e:  # bad input: a clear message, no traceback
        print(f"schedopt {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
