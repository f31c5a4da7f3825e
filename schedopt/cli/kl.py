"""``schedopt kl``: the closed-form Gaussian KL of a sigma list (P0)."""

from __future__ import annotations

import json

from .._compile import fast_jit
from ..gaussian import DIRECTIONS, INITS, SOLVERS, gaussian_kl, sigma_grid
from ._common import SPECTRUM_HELP, parse_floats, parse_spectrum


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


def run(args) -> int:
    if args.eigenvalues is None and args.spectrum is None:
        raise ValueError("give --eigenvalues or --spectrum")
    spectrum = parse_spectrum(args.spectrum, args.eigenvalues)
    grid = sigma_grid(parse_floats("sigmas", args.sigmas))
    kl = float(fast_jit(gaussian_kl)(spectrum, grid, args.solver, args.init, args.direction))
    record = {
        "kl": kl,
        "num_steps": grid.num_steps,
        "solver": args.solver,
        "init": args.init,
        "direction": args.direction,
        "dim": spectrum.dim,
    }
    print(json.dumps(record) if args.json else f"KL = {kl:.6g}  ({json.dumps(record)})")
    return 0
