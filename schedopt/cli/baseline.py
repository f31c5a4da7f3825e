"""``schedopt baseline NAME --num-steps N``: the sigma list of a fixed schedule family.

``--num-steps N`` gives ``N + 1`` noise levels (sampler steps, whatever the solver's NFE);
``--nfe`` is its deprecated spelling (the same number, with a warning).

``--range LO,HI`` puts the family on the noise range ``[LO, HI]``: a family with a free
range (``edm``, ``logsnr-linear``, ...) is built there by its own definition (as
``--sigma-min LO --sigma-max HI``); a family whose range is fixed by its table (the
discrete VP schedules) keeps its shape, its logSNR fraction, laid onto ``[LO, HI]``
(:class:`~schedopt.schedules.RangedSchedule`).

A family option that NAME does not take is refused, and so is a list that comes out
non-finite or not strictly decreasing (e.g. noise levels beyond what the working
precision resolves; ``--x64`` computes in float64).
"""

from __future__ import annotations

import json

import numpy as np

from ..schedules import FAMILIES, RangedSchedule, grid, make_schedule
from ..schedules.base import FINALS
from ._common import (
    STEPS_HELP,
    add_steps_option,
    family_parameters,
    float_range,
    int_range,
    noise_level,
    noise_range,
    working_dtype,
)

#: Families a sigma list can be printed for (not the learnable ones, not a raw table).
NAMES = tuple(n for n in FAMILIES if n not in ("tabulated", "piecewise-linear", "monotone-cubic"))

# Family option -> (help, argparse type).
_OPTIONS = {
    "rho": ("EDM / polyexponential exponent", float_range(0, 1000, open_lo=True)),
    "gamma": ("tangent coefficient", float_range(0, open_lo=True)),
    "shift": ("cosine shift", float_range(0, open_lo=True)),
    "mu": ("Laplace location", float_range(-1000, 1000)),
    "b": ("Laplace scale", float_range(0, 1000, open_lo=True)),
    "beta_min": ("VP linear-beta start", float_range(0, open_lo=True)),
    "beta_max": ("VP linear-beta end", float_range(0, open_lo=True)),
    "sigma_min": ("smallest noise level (default 0.002)", noise_level),
    "sigma_max": ("largest noise level (default 80)", noise_level),
    "num_timesteps": ("discrete schedules: number of training timesteps", int_range(2, 100_000)),
    "beta_start": ("discrete schedules: first beta", float_range(0, 1, open_lo=True)),
    "beta_end": ("discrete schedules: last beta", float_range(0, 1, open_lo=True)),
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "baseline",
        help="sigma list of a fixed schedule family",
        description="Example: schedopt baseline edm --num-steps 10 --rho 7 --json. "
        + STEPS_HELP
        + "; --nfe is a deprecated spelling of --num-steps (the same number).",
    )
    p.add_argument("name", choices=NAMES, metavar="NAME", help=f"one of {', '.join(NAMES)}")
    add_steps_option(p, default=None, help="number of sampler steps N (required)")
    p.add_argument("--final", default="zero", choices=FINALS)
    for option, (text, kind) in _OPTIONS.items():
        p.add_argument(
            f"--{option.replace('_', '-')}", dest=option, type=kind, default=None, help=text
        )
    p.add_argument(
        "--range",
        type=noise_range,
        default=None,
        metavar="LO,HI",
        help="the noise range: the family's own definition there, or its shape laid onto it "
        "when its range is fixed (discrete tables)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.num_steps is None:
        raise ValueError("--num-steps is required: the number of sampler steps N")
    params = {opt: getattr(args, opt) for opt in _OPTIONS if getattr(args, opt) is not None}
    takes = family_parameters(args.name)
    extra = sorted(set(params) - takes)
    if extra:
        flags = ", ".join("--" + o.replace("_", "-") for o in extra)
        accepted = ", ".join("--" + o.replace("_", "-") for o in sorted(takes & set(_OPTIONS)))
        raise ValueError(
            f"{flags} does not apply to {args.name!r} (it takes: {accepted or 'no options'})"
        )
    if (
        "sigma_min" in params
        and "sigma_max" in params
        and params["sigma_min"] >= params["sigma_max"]
    ):
        raise ValueError(
            f"--sigma-min ({params['sigma_min']:g}) must be below --sigma-max "
            f"({params['sigma_max']:g})"
        )
    free_range = {"sigma_min", "sigma_max"} <= takes
    if args.range is not None:
        if {"sigma_min", "sigma_max"} & set(params):
            raise ValueError("give --range or --sigma-min/--sigma-max, not both")
        if free_range:
            params.update(sigma_min=args.range[0], sigma_max=args.range[1])
    schedule = make_schedule(args.name, **params)
    if args.range is not None and not free_range:
        lo, hi = args.range
        # Bounds a factor e beyond the range: the range is represented exactly (to rounding).
        schedule = RangedSchedule.from_schedule(schedule, (lo / np.e, hi * np.e), (lo, hi))
    sigmas = np.asarray(grid(schedule, args.num_steps, args.final), dtype=np.float64)
    positive = sigmas[:-1] if args.final == "zero" else sigmas
    if not np.all(np.isfinite(sigmas)) or np.any(positive <= 0) or np.any(np.diff(sigmas) >= 0):
        raise ValueError(
            f"{args.name!r} with {params or 'its defaults'} at --num-steps {args.num_steps} "
            f"gives noise levels that are not finite, positive and strictly decreasing in "
            f"{working_dtype().name} ({sigmas[:4].tolist()}...); use a narrower noise range "
            "or --x64"
        )
    record = {
        "name": args.name,
        "num_steps": args.num_steps,
        "final": args.final,
        "params": params,
        "range": None if args.range is None else list(args.range),
        "sigmas": sigmas.tolist(),
    }
    text = json.dumps(record, allow_nan=False)
    print(text if args.json else ", ".join(f"{s:.6g}" for s in record["sigmas"]))
    return 0
