"""``schedopt baseline NAME --nfe N``: the sigma list of a fixed schedule family."""

from __future__ import annotations

import json

from ..schedules import FAMILIES, grid, make_schedule
from ..schedules.base import FINALS

# Family option -> (constructor keyword, help).
_OPTIONS = {
    "rho": ("rho", "EDM / polyexponential exponent"),
    "gamma": ("gamma", "tangent coefficient"),
    "shift": ("shift", "cosine shift"),
    "mu": ("mu", "Laplace location"),
    "b": ("b", "Laplace scale"),
    "beta_min": ("beta_min", "VP linear-beta start"),
    "beta_max": ("beta_max", "VP linear-beta end"),
    "sigma_min": ("sigma_min", "smallest noise level (default 0.002)"),
    "sigma_max": ("sigma_max", "largest noise level (default 80)"),
    "num_timesteps": ("num_timesteps", "discrete schedules: number of training timesteps"),
    "beta_start": ("beta_start", "discrete schedules: first beta"),
    "beta_end": ("beta_end", "discrete schedules: last beta"),
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "baseline",
        help="sigma list of a fixed schedule family",
        description="Example: schedopt baseline edm --nfe 10 --rho 7 --json",
    )
    p.add_argument("name", help=f"one of {', '.join(n for n in FAMILIES if n != 'tabulated')}")
    p.add_argument("--nfe", type=int, required=True, help="number of steps N")
    p.add_argument("--final", default="zero", choices=FINALS)
    for option, (_, text) in _OPTIONS.items():
        kind = int if option == "num_timesteps" else float
        p.add_argument(
            f"--{option.replace('_', '-')}", dest=option, type=kind, default=None, help=text
        )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.name == "tabulated" or args.name not in FAMILIES:
        raise ValueError(f"unknown schedule family {args.name!r}")
    params = {
        kw: getattr(args, opt)
        for opt, (kw, _) in _OPTIONS.items()
        if getattr(args, opt) is not None
    }
    schedule = make_schedule(args.name, **params)
    sigmas = [float(x) for x in grid(schedule, args.nfe, args.final)]
    record = {
        "name": args.name,
        "nfe": args.nfe,
        "final": args.final,
        "params": params,
        "sigmas": sigmas,
    }
    print(json.dumps(record) if args.json else ", ".join(f"{s:.6g}" for s in sigmas))
    return 0
