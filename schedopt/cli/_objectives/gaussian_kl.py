"""``--objective gaussian-kl`` (the default): the closed-form KL on a data spectrum
(Sun, Poor & Zhang: Gaussian KL, Euler–Maclaurin, tangent law; arXiv 2601.13602)."""

from __future__ import annotations

import dataclasses

from ...baselines import baseline_schedules
from ...gaussian import (
    DIRECTIONS,
    INITS,
    SOLVERS,
    asymptotically_optimal_schedule,
    solver_from_name,
)
from ...objectives import GaussianKL
from .._common import MAX_KL_ENTRIES, SPECTRUM_HELP, check_spectrum_precision, parse_spectrum
from . import ObjectiveSetup

NAME = "gaussian-kl"
HELP = "exact KL between Gaussian data (a spectrum) and the sampler output"
OPTIONS = ("spectrum", "eigenvalues", "init", "direction")

#: Eigenvalues times steps up to which the fit is compiled quickly (``ObjectiveSetup``):
#: there a step takes well under a millisecond either way.
FAST_COMPILE_SIZE = 10**5


def add_arguments(group) -> None:
    group.add_argument("--spectrum", default="digits", help=SPECTRUM_HELP)
    group.add_argument(
        "--eigenvalues", default=None, help="comma-separated eigenvalues (instead of --spectrum)"
    )
    group.add_argument(
        "--init",
        default="exact",
        choices=INITS,
        help="initial-noise convention (also of the sample-based objectives)",
    )
    group.add_argument(
        "--direction", default="forward", choices=DIRECTIONS, help="forward = KL(data || output)"
    )


def solver_names() -> tuple[str, ...]:
    """The Gaussian solvers (:data:`schedopt.gaussian.SOLVERS`)."""
    return tuple(SOLVERS)


def solver_fields(name: str) -> set[str]:
    """The options of the Gaussian solver ``name`` (e.g. ``{"eta"}`` for ancestral)."""
    return {f.name for f in dataclasses.fields(solver_from_name(name))}


def check_options(args) -> None:
    if {"spectrum", "eigenvalues"} <= set(args.given):
        raise ValueError("give --spectrum or --eigenvalues, not both")


def build(args) -> ObjectiveSetup:
    spectrum = parse_spectrum(
        None if args.eigenvalues is not None else args.spectrum, args.eigenvalues
    )
    option = "--eigenvalues" if args.eigenvalues is not None else "--spectrum"
    check_spectrum_precision(spectrum, args.sigma_max, option)
    entries = args.num_steps * spectrum.dim
    if entries > MAX_KL_ENTRIES:
        raise ValueError(
            f"--num-steps {args.num_steps} with a {spectrum.dim}-eigenvalue {option} needs "
            f"{entries:.3g} entries per step map, above the {MAX_KL_ENTRIES:.3g} this command "
            "allows (about 2 GB of memory); use fewer steps or a smaller spectrum"
        )
    fields = solver_fields(args.solver)
    options = {k: getattr(args, k) for k in ("eta", "kappa", "process") if k in fields}
    objective = GaussianKL(
        spectrum,
        num_steps=args.num_steps,
        solver=solver_from_name(args.solver, **options),
        init=args.init,
        direction=args.direction,
        final=args.final,
    )
    references = baseline_schedules(spectrum, args.sigma_min, args.sigma_max)
    references["asymptotic-optimum"] = asymptotically_optimal_schedule(
        spectrum, args.sigma_min, args.sigma_max
    )
    small = spectrum.dim * args.num_steps <= FAST_COMPILE_SIZE
    return ObjectiveSetup(objective, {"spectrum": spectrum.fingerprint()}, references, small)
