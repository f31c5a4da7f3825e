"""``--objective gaussian-kl`` (the default): P0's closed-form KL on a data spectrum."""

from __future__ import annotations

from ...baselines import baseline_schedules
from ...gaussian import DIRECTIONS, INITS, asymptotically_optimal_schedule
from ...objectives import GaussianKL
from .._common import SPECTRUM_HELP, parse_spectrum
from . import ObjectiveSetup

NAME = "gaussian-kl"
HELP = "exact KL between Gaussian data (a spectrum) and the sampler output (P0)"

#: Eigenvalues times steps up to which the fit is compiled quickly (``ObjectiveSetup``):
#: there a step takes well under a millisecond either way.
FAST_COMPILE_SIZE = 10**5


def add_arguments(group) -> None:
    group.add_argument("--spectrum", default="digits", help=SPECTRUM_HELP)
    group.add_argument(
        "--eigenvalues", default=None, help="comma-separated eigenvalues (overrides --spectrum)"
    )
    group.add_argument("--init", default="exact", choices=INITS, help="initial-noise convention")
    group.add_argument(
        "--direction", default="forward", choices=DIRECTIONS, help="forward = KL(data || output)"
    )


def build(args) -> ObjectiveSetup:
    spectrum = parse_spectrum(args.spectrum, args.eigenvalues)
    objective = GaussianKL(
        spectrum,
        num_steps=args.nfe,
        solver=args.solver,
        init=args.init,
        direction=args.direction,
        final=args.final,
    )
    references = baseline_schedules(spectrum, args.sigma_min, args.sigma_max)
    references["asymptotic-optimum"] = asymptotically_optimal_schedule(
        spectrum, args.sigma_min, args.sigma_max
    )
    small = spectrum.dim * args.nfe <= FAST_COMPILE_SIZE
    return ObjectiveSetup(objective, {"spectrum": spectrum.fingerprint()}, references, small)
