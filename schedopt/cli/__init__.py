"""The ``schedopt`` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds an ``argparse`` sub-parser whose ``func`` default is
the function to run with the parsed arguments (returning an exit code); a subcommand
whose options depend on the command line takes ``register(subparsers, argv)`` (``optimize``:
an ``--objective`` plug-in module adds its own options). Modules are
discovered automatically, so adding a subcommand touches no other file; a run imports only
the module of its own subcommand (``schedopt --help`` imports them all).

Every subcommand takes ``--x64`` (compute in float64: ``jax_enable_x64`` is switched on
before anything is imported or computed). Errors are one line on stderr,
``schedopt COMMAND: error: ...``; the exit status is 2 when the input was refused (bad
options, files that cannot be used, inputs the working precision cannot handle) and 1
when the run failed (an operating-system error, a run directory in use by another
process, a diverging optimisation or training). ``args.given`` holds the destinations
of the options given on the command line (not defaulted). A deprecated spelling of an
option (``--nfe`` for ``--num-steps`` where it counted steps, ``--sampler`` for
``--solver``) is accepted with the same value and a one-line warning on stderr.

Every subcommand takes ``--no-compile-cache``: compiled programs are otherwise kept on disk
between runs (:mod:`schedopt.cli._cache`; ``SCHEDOPT_COMPILE_CACHE`` moves or disables it).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import pkgutil
import re
import sys
import warnings

import jax

EXIT_REFUSED = 2
EXIT_FAILED = 1
X64_FLAG = "--x64"
_UNSET = object()
# "--eigenvalues -1,1": argparse takes "-1,1" for an option; "--name=-1,1" it does not.
_NEGATIVE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def __getattr__(name):
    # ``ObjectiveSetup``, what an objective plug-in's ``build`` returns, is defined with the
    # plug-ins (importing it imports equinox, which ``schedopt --help`` does not need).
    if name == "ObjectiveSetup":
        from ._objectives import ObjectiveSetup

        return ObjectiveSetup
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def command_names() -> list[str]:
    """The subcommands, one per public module of this package.

    >>> "optimize" in command_names()
    True
    """
    names = (info.name for info in pkgutil.iter_modules(__path__))
    return sorted(name for name in names if not name.startswith("_"))


def build_parser(command: str | None = None, argv: list[str] = ()) -> argparse.ArgumentParser:
    """The parser of every subcommand, or only of ``command`` (its module alone imported).

    ``argv``, the command line to parse, goes to the ``register`` of the subcommands whose
    options depend on it (``register(subparsers, argv)``: ``optimize --objective
    package.module`` loads that plug-in, which adds its own options)."""
    parser = argparse.ArgumentParser(
        prog="schedopt",
        description="Learn diffusion noise schedules and sampling discretisations.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = command_names()
    for name in [command] if command in names else names:
        module = importlib.import_module(f"{__name__}.{name}")
        if "argv" in inspect.signature(module.register).parameters:
            module.register(sub, argv=argv)
        else:
            module.register(sub)
    for command in sub.choices.values():
        command.add_argument(
            X64_FLAG,
            action="store_true",
            help="compute in float64 (jax_enable_x64); float32 otherwise",
        )
        command.add_argument(
            "--no-compile-cache",
            action="store_true",
            help="do not keep compiled programs on disk between runs "
            "(also: SCHEDOPT_COMPILE_CACHE=off)",
        )
    parser.subcommands = dict(sub.choices)  # name -> sub-parser
    return parser


def attach_negative_values(argv: list[str]) -> list[str]:
    """``["--x", "-1,2"]`` -> ``["--x=-1,2"]``: a value starting with a minus sign stays
    the option's value instead of being read as another option.

    >>> attach_negative_values(["kl", "--eigenvalues", "-1,1", "--json"])
    ['kl', '--eigenvalues=-1,1', '--json']
    """
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out.extend(argv[i:])
            break
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if token.startswith("--") and "=" not in token and nxt and _NEGATIVE.match(nxt):
            out.append(f"{token}={nxt}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def explicit_options(parser: argparse.ArgumentParser, argv: list[str], parsed) -> frozenset:
    """Destinations of the options ``argv`` gives ``parser`` (those left at their default
    are not in it): ``argv`` parsed again into a namespace pre-filled with a sentinel."""
    namespace = argparse.Namespace(**dict.fromkeys(vars(parsed), _UNSET))
    parser.parse_args(argv, namespace=namespace)
    from ._common import DEPRECATED

    given = (k for k, v in vars(namespace).items() if v is not _UNSET and k != DEPRECATED)
    return frozenset(given)


@contextlib.contextmanager
def _warnings_as_lines(command: str):
    """Show warnings as ``schedopt COMMAND: warning: ...`` lines."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"schedopt {command}: warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def describe_os_error(e: OSError) -> str:
    """``'PATH': reason`` for an operating-system error (both paths when there are two).

    >>> describe_os_error(PermissionError(13, "Permission denied", "/x"))
    "'/x': Permission denied"
    """
    reason = e.strerror or str(e)
    paths = [p for p in (e.filename, e.filename2) if p is not None]
    if not paths:
        return reason
    return " -> ".join(repr(str(p)) for p in paths) + f": {reason}"


def _failure_types() -> tuple[type[BaseException], ...]:
    from ..io.atomic import DirectoryInUseError
    from ..optimize.loop import OptimizationError

    return (DirectoryInUseError, OptimizationError, FloatingPointError)


def _drop_closed_event_loop_noise(unraisable) -> None:
    """``sys.unraisablehook`` that drops orbax's ``RuntimeError('Event loop is closed')``
    and hands everything else on. After a checkpoint read fails, a tensorstore callback
    can still be posted to orbax's closed asyncio loop, which printed a second, spurious
    traceback after the clear error."""
    exc = unraisable.exc_value
    if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
        return
    _drop_closed_event_loop_noise.previous(unraisable)


def _install_unraisable_filter() -> None:
    if sys.unraisablehook is not _drop_closed_event_loop_noise:  # kept for the exit too
        _drop_closed_event_loop_noise.previous = sys.unraisablehook
        sys.unraisablehook = _drop_closed_event_loop_noise


def main(argv: list[str] | None = None) -> int:
    _install_unraisable_filter()
    argv = attach_negative_values(list(sys.argv[1:] if argv is None else argv))
    x64 = X64_FLAG in argv[: argv.index("--")] if "--" in argv else X64_FLAG in argv
    before = bool(jax.config.jax_enable_x64)
    if x64:  # before any module creates an array
        jax.config.update("jax_enable_x64", True)
    try:
        return _run(argv)
    finally:
        if x64 and not before:
            jax.config.update("jax_enable_x64", False)


def _command_in(argv: list[str]) -> str | None:
    """The first argument if it names a subcommand (then only its module is imported)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def _run(argv: list[str]) -> int:
    parser = build_parser(_command_in(argv), argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage and the error (or --help)
        return int(e.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_REFUSED
    if getattr(args, "x64", False) and not jax.config.jax_enable_x64:  # e.g. "--x6"
        print(
            f"schedopt {args.command}: error: write {X64_FLAG} in full: it takes effect "
            "before the command line is parsed",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    from ._cache import configure_compile_cache

    configure_compile_cache(disabled=args.no_compile_cache)
    rest = argv[argv.index(args.command) + 1 :]
    args.given = explicit_options(parser.subcommands[args.command], rest, args)
    from ._common import plain_ints

    plain_ints(args)
    prefix = f"schedopt {args.command}: error:"
    from ._common import DEPRECATED

    for message in getattr(args, DEPRECATED, ()):
        print(f"schedopt {args.command}: warning: {message}", file=sys.stderr)
    with _warnings_as_lines(args.command):
        try:
            return int(args.func(args) or 0)
        except ValueError as e:  # refused input: a clear message, no traceback
            print(f"{prefix} {e}", file=sys.stderr)
            return EXIT_REFUSED
        except _failure_types() as e:
            print(f"{prefix} {e}", file=sys.stderr)
            return EXIT_FAILED
        except OSError as e:
            print(f"{prefix} {describe_os_error(e)}", file=sys.stderr)
            return EXIT_FAILED
        except MemoryError:
            print(f"{prefix} out of memory; use smaller sizes", file=sys.stderr)
            return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
