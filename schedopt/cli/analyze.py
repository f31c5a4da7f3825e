"""``schedopt analyze``: score / discretisation / initialisation errors of a VE sampler
(Wang, He & Tao, "Evaluating the design space of diffusion-based generative models")."""

from __future__ import annotations

import json
import math

import jax

from ..analysis import PROFILES, PerturbedDenoiser, decompose_error
from ..data import grid_mixture, ring
from ..io.card import card_schedule, load_card
from ..models import GaussianMixtureDenoiser
from ..models.nnx_adapter import load_denoiser
from ..sampling import ODE_SOLVERS, EulerMaruyama, ODESampler
from ..schedules import EDM, LogSNRLinear
from ._common import (
    MAX_SEED,
    MAX_STEPS,
    add_deprecated_alias,
    float_range,
    int_range,
    network_dir,
    noise_level,
)

DATASETS = {"ring": ring, "grid": grid_mixture}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="error decomposition E_S + E_D + E_I of a VE sampler",
        description="Score error E_S, discretisation error E_D and initialisation error E_I "
        "(RMS per-sample distances under common random numbers; total <= their sum) of a VE "
        "sampler on a 2-D Gaussian-mixture target with an exact score. The denoiser is the "
        "exact one (or a network trained with `schedopt train --dataset ring|grid`, given by "
        "--denoiser) plus a controlled error of size --score-error; the schedule is Song's, "
        "EDM's or any schedule card (--card). Example: schedopt analyze --schedule song "
        "--solver euler --num-steps 20 --score-error 0.05 --json. --num-steps counts sampler "
        "steps (the JSON also records the NFE); --sampler is a deprecated spelling of --solver.",
    )
    p.add_argument("--dataset", default="ring", choices=sorted(DATASETS))
    p.add_argument(
        "--schedule",
        default="edm",
        choices=("edm", "song"),
        help="edm: Karras polynomial (--rho); song: geometric sigma_min (sigma_max/sigma_min)^t",
    )
    p.add_argument(
        "--rho",
        type=float_range(0, 1000, open_lo=True),
        default=7.0,
        help="EDM exponent (with --schedule edm)",
    )
    p.add_argument(
        "--card", default=None, help="schedule card or run directory (overrides --schedule)"
    )
    p.add_argument(
        "--denoiser",
        default=None,
        help="trained network (RUN_DIR of `schedopt train` or its network/ folder) instead of "
        "the exact denoiser",
    )
    p.add_argument("--sigma-min", type=noise_level, default=0.002, help="(without --card)")
    p.add_argument("--sigma-max", type=noise_level, default=80.0, help="(without --card)")
    solvers = (*ODE_SOLVERS, "euler-maruyama")
    solver = p.add_mutually_exclusive_group()
    solver.add_argument("--solver", default="euler", choices=solvers, help="(default euler)")
    add_deprecated_alias(solver, "--sampler", "--solver", "solver", choices=solvers)
    p.add_argument(
        "--num-steps",
        type=int_range(1, MAX_STEPS),
        default=20,
        help="sampler steps N (default 20; its NFE depends on --solver)",
    )
    p.add_argument(
        "--score-error",
        type=float_range(0, 1e6),
        default=0.0,
        help="perturbation size (>= 0)",
    )
    p.add_argument(
        "--profile",
        default="edm",
        choices=PROFILES,
        help="its noise-level profile (with --score-error > 0)",
    )
    p.add_argument("--num-samples", type=int_range(2, 1_000_000), default=2000)
    p.add_argument("--reference-steps", type=int_range(1, MAX_STEPS), default=512)
    p.add_argument("--seed", type=int_range(0, MAX_SEED), default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def trained_denoiser(path: str, dim: int):
    """A network saved by ``schedopt train`` (RUN_DIR or RUN_DIR/network), checked to
    take ``dim``-dimensional vectors."""
    denoiser = load_denoiser(network_dir("--denoiser", path))
    probe = jax.numpy.zeros((1, dim))
    try:
        out = denoiser(probe, 1.0)
    except Exception as e:  # shape errors from inside the network
        raise ValueError(f"--denoiser {path!r} does not take {dim}-D vectors: {e}") from None
    if out.shape != probe.shape:
        raise ValueError(f"--denoiser {path!r} maps {probe.shape} to {out.shape}, not {dim}-D")
    return denoiser


def check_options(args) -> None:
    """Refuse the options given that the chosen schedule or error would ignore."""
    given = set(args.given)
    problems = []
    if args.card is not None:
        problems += [
            f"--{d.replace('_', '-')} does not apply with --card (the card sets the schedule)"
            for d in ("schedule", "rho", "sigma_min", "sigma_max")
            if d in given
        ]
    elif "rho" in given and args.schedule != "edm":
        problems.append(f"--rho applies to --schedule edm, not {args.schedule}")
    if "profile" in given and args.score_error == 0:
        problems.append("--profile applies with --score-error > 0 only")
    if problems:
        raise ValueError("; ".join(problems) + " (leave these options out)")
    if args.card is None and args.sigma_min >= args.sigma_max:
        raise ValueError(
            f"--sigma-min ({args.sigma_min:g}) must be below --sigma-max ({args.sigma_max:g})"
        )
    if args.denoiser is not None:
        network_dir("--denoiser", args.denoiser)


def run(args) -> int:
    check_options(args)
    if args.card is not None:
        schedule = card_schedule(load_card(args.card))
    elif args.schedule == "edm":
        schedule = EDM(rho=args.rho, sigma_min=args.sigma_min, sigma_max=args.sigma_max)
    else:
        schedule = LogSNRLinear(sigma_min=args.sigma_min, sigma_max=args.sigma_max)
    if args.solver == "euler-maruyama":
        sampler = EulerMaruyama(args.num_steps, process="ve")
    else:
        sampler = ODESampler(args.num_steps, args.solver)
    mixture = DATASETS[args.dataset]()
    key_err, key_run = jax.random.split(jax.random.key(args.seed))
    base = (
        GaussianMixtureDenoiser.from_mixture(mixture)
        if args.denoiser is None
        else trained_denoiser(args.denoiser, mixture.dim)
    )
    denoiser = PerturbedDenoiser(
        base,
        args.score_error,
        args.profile,
        key=key_err,
        dim=mixture.dim,
    )
    result = decompose_error(
        denoiser,
        mixture,
        schedule,
        sampler,
        key_run,
        num_samples=args.num_samples,
        reference_steps=args.reference_steps,
    )
    record = {
        **result.as_dict(),
        "dataset": args.dataset,
        "schedule": args.schedule if args.card is None else f"card:{args.card}",
        "denoiser": "exact" if args.denoiser is None else args.denoiser,
        "rho": args.rho if args.schedule == "edm" else None,
        "solver": args.solver,
        "num_steps": args.num_steps,
        "score_error": args.score_error,
        "profile": args.profile,
    }
    bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise ValueError(
            f"the error decomposition is not finite ({', '.join(bad)}): --score-error "
            f"{args.score_error:g} or the schedule's noise range is too large for "
            f"{args.num_steps} steps; try smaller values or --x64"
        )
    if args.json:
        print(json.dumps(record, allow_nan=False))
    else:
        print(
            f"E_S = {record['score']:.4g}  E_D = {record['discretisation']:.4g}  "
            f"E_I = {record['initialisation']:.4g}  sum = {record['sum_of_terms']:.4g}  "
            f"total = {record['total']:.4g}  (sliced W2 {record['sliced_w2']:.4g}, "
            f"NFE {record['nfe']})"
        )
    return 0
