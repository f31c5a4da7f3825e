"""``schedopt kl``: the closed-form Gaussian KL of a sigma list (Sun, Poor & Zhang).

The result is finite or the command fails: in float32, eigenvalues below ``1e-12`` of
the largest squared noise level are refused up front, and a KL that still comes out
non-finite is refused with the input that caused it; ``--x64`` computes in float64.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .._compile import fast_jit
from ..gaussian import DIRECTIONS, INITS, SOLVERS, gaussian_kl, sigma_grid
from ._common import (
    MAX_STEPS,
    SPECTRUM_HELP,
    check_noise_level,
    check_spectrum_precision,
    parse_floats,
    parse_spectrum,
    working_dtype,
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "kl",
        help="Gaussian KL of a sampling grid",
        description="KL between Gaussian data and the output of a sampler run on --sigmas "
        "with the exact denoiser. Example: schedopt kl --sigmas 80,10,1,0.1,0 "
        "--eigenvalues 0.5,1,2 --json",
    )
    p.add_argument("--sigmas", required=True, help="comma-separated noise levels, decreasing")
    p.add_argument("--eigenvalues", default=None, help="comma-separated data eigenvalues")
    p.add_argument("--spectrum", default=None, help=SPECTRUM_HELP + " (if no --eigenvalues)")
    p.add_argument(
        "--solver", default="euler", choices=[s for s in SOLVERS if s != "euler-maruyama"]
    )
    p.add_argument("--init", default="exact", choices=INITS)
    p.add_argument("--direction", default="forward", choices=DIRECTIONS)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def parse_sigmas(text: str) -> list[float]:
    """``--sigmas``: 2 to ``MAX_STEPS + 1`` noise levels the working precision can square
    (the last may be 0), strictly decreasing."""
    sigmas = parse_floats("sigmas", text)
    if not 2 <= len(sigmas) <= MAX_STEPS + 1:
        raise ValueError(f"--sigmas needs 2 to {MAX_STEPS + 1} noise levels, got {len(sigmas)}")
    for i, s in enumerate(sigmas):
        check_noise_level(f"--sigmas entry {i}", s, allow_zero=i == len(sigmas) - 1)
    return sigmas


def run(args) -> int:
    if args.eigenvalues is None and args.spectrum is None:
        raise ValueError("give --eigenvalues or --spectrum")
    if args.eigenvalues is not None and args.spectrum is not None:
        raise ValueError("give --eigenvalues or --spectrum, not both")
    option = "--eigenvalues" if args.eigenvalues is not None else "--spectrum"
    sigmas = parse_sigmas(args.sigmas)
    spectrum = parse_spectrum(args.spectrum, args.eigenvalues)
    check_spectrum_precision(spectrum, max(sigmas), option)
    grid = sigma_grid(sigmas)
    kl = float(fast_jit(gaussian_kl)(spectrum, grid, args.solver, args.init, args.direction))
    if not math.isfinite(kl):
        smallest = float(np.min(np.asarray(spectrum.eigenvalues)))
        hint = (
            "; pass --x64 to compute in float64"
            if working_dtype() == np.float32
            else "; the noise levels are too far apart for these eigenvalues"
        )
        raise ValueError(
            f"the KL is not finite ({kl}) in {working_dtype().name}: the smallest eigenvalue "
            f"of {option} ({smallest:.3g}) is {smallest / max(sigmas) ** 2:.2g} of the largest "
            f"squared noise level of --sigmas ({max(sigmas):g}^2){hint}"
        )
    record = {
        "kl": kl,
        "num_steps": grid.num_steps,
        "solver": args.solver,
        "init": args.init,
        "direction": args.direction,
        "dim": spectrum.dim,
        "dtype": working_dtype().name,
    }
    text = json.dumps(record, allow_nan=False)
    print(text if args.json else f"KL = {kl:.6g}  ({text})")
    return 0
