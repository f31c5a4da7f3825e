"""``schedopt evaluate``: sample-quality metrics of a trained model or of saved samples.

    schedopt evaluate --model runs/digits                 # sample at <= 50 NFE (Heun), score
    schedopt evaluate --model runs/digits --num-steps 10  # 10 Heun steps (19 NFE)
    schedopt evaluate --samples x.npy --dataset ring      # score saved samples
    schedopt evaluate --model runs/digits --card runs/fit # a card on 5 held-out seeds

Metrics are compared with the data set's held-out test split (see
``schedopt.metrics.evaluate_samples``): Fréchet distance of classifier features for
digits, sliced W2, MMD, precision/recall, and for Gaussian mixtures the exact Gaussian KL,
log-likelihood and mode coverage. The JSON goes to stdout (and ``--out``), a table to
stderr.

``--card`` samples a learned schedule with the solver, number of steps and grid end the
card records, on ``--seeds`` seeds (default 5) from ``HELD_OUT_SEED`` = 10000 on (never a
seed the fit used: the card's own seed is refused), and reports each metric's mean with
its 95% t-interval over seeds (:func:`schedopt.metrics.mean_interval`).

Steps and NFE: ``--num-steps N`` samples with ``N`` steps of ``--solver``; ``--nfe B``
(default 50) with the most steps whose denoiser evaluations do not exceed ``B``
(:func:`schedopt.sampling.sampler_for_nfe`: Heun makes ``2N - 1`` evaluations in ``N``
steps, so ``--nfe 50`` gives 25 steps, 49 NFE; a budget given that the solver cannot
meet exactly is rounded down with a warning). The JSON records both ``num_steps`` and
``nfe``. ``--sampler`` is a deprecated spelling of ``--solver``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np

from .._checks import check_positive_int
from ._common import (
    MAX_SEED,
    MAX_STEPS,
    add_deprecated_alias,
    int_range,
    load_npy,
    network_dir,
)
from ._rundir import check_output_file

DEFAULT_NFE = 50
#: First sampling seed of ``--card`` evaluations (fits and teacher pairs use small seeds).
HELD_OUT_SEED = 10_000
#: Held-out seeds of a ``--card`` evaluation unless ``--seeds`` says otherwise.
CARD_SEEDS = 5


def parse_schedule(text: str):
    """A sampling schedule: a family name (``edm``, ``cosine``, ...) or a card/checkpoint path."""
    from ..schedules import FAMILIES, make_schedule

    if text in FAMILIES:
        try:
            return make_schedule(text)
        except ValueError:
            raise ValueError(
                f"--schedule {text!r} needs parameters; give a family with defaults "
                "(edm, cosine, ...) or a card"
            ) from None
    path = Path(text)
    if path.exists():
        from ..io import card_schedule, load_source

        return card_schedule(load_source(path))
    raise ValueError(
        f"--schedule must be a schedule family ({', '.join(FAMILIES)}) or an existing card or "
        f"checkpoint path, got {text!r}"
    )


def sample_denoiser(
    denoiser,
    event_shape: tuple[int, ...],
    num_samples: int,
    *,
    key,
    nfe: int = DEFAULT_NFE,
    sampler: str = "heun",
    schedule=None,
    batch_size: int = 500,
    solver=None,
) -> tuple[np.ndarray, dict]:
    """``num_samples`` samples from the probability-flow ODE at (at most) ``nfe`` evaluations,
    or with ``solver`` (an :class:`~schedopt.sampling.AbstractSampler`) when given.

    Returns the samples and a description ``{"sampler", "num_steps", "nfe", "schedule"}``.
    """
    from ..sampling import registry_name, sampler_for_nfe
    from ..schedules import EDM
    from ..schedules.registry import schedule_to_config

    num_samples = check_positive_int("num_samples", num_samples)
    batch_size = check_positive_int("batch_size", batch_size)
    schedule = EDM() if schedule is None else schedule
    if solver is None:
        solver = sampler_for_nfe(sampler, nfe)
    else:
        sampler = registry_name(solver)
    run = jax.jit(lambda d, s, k, n: solver.sample(d, s, k, (n, *event_shape)), static_argnums=3)
    keys = jax.random.split(key, -(-num_samples // batch_size))
    chunks = []
    for i, k in enumerate(keys):
        n = min(batch_size, num_samples - i * batch_size)
        chunks.append(np.asarray(run(denoiser, schedule, k, n)))
    info = {
        "sampler": sampler,
        "num_steps": solver.num_steps,
        "nfe": solver.nfe,
        "schedule": schedule_to_config(schedule),
    }
    return np.concatenate(chunks), info


def card_sampling(args):
    """``(card, schedule, sampler)`` from ``--card``: the card, its schedule, and its solver
    at the number of steps and grid end it was fitted for (``--solver`` only when it
    records none)."""
    from ..io import card_schedule, load_source
    from ..sampling import make_sampler

    fixed = [
        f"--{d.replace('_', '-')}" for d in ("nfe", "num_steps", "schedule") if d in args.given
    ]
    card = load_source(args.card)
    recorded = card.get("solver")
    if recorded is not None and "solver" in args.given:
        fixed.append("--solver")
    if fixed:
        raise ValueError(
            f"{', '.join(fixed)} cannot be given with --card: the card fixes the schedule, the "
            "solver and the number of steps it was fitted for"
        )
    if recorded is None:
        recorded = args.solver
    options = dict(recorded) if isinstance(recorded, dict) else {"name": recorded}
    name = options.pop("name")
    at = card["optimized_at"]
    try:
        sampler = make_sampler(name, at["num_steps"], final=at["final"], **options)
    except (TypeError, ValueError) as e:
        raise ValueError(f"--card {args.card!r} records solver {recorded!r}: {e}") from None
    return card, card_schedule(card), sampler


def model_sampler(args):
    """The sampler of ``--model`` without ``--card``: ``--solver`` at ``--num-steps`` steps,
    or at the most steps whose NFE does not exceed ``--nfe`` (a budget given that the
    solver cannot meet exactly is rounded down, with a warning naming what it gives)."""
    from ..sampling import make_sampler, sampler_for_nfe

    if {"nfe", "num_steps"} <= set(args.given):
        raise ValueError(
            f"give --num-steps (sampler steps; got {args.num_steps}) or --nfe (denoiser "
            f"evaluations; got {args.nfe}), not both"
        )
    if args.num_steps is not None:
        return make_sampler(args.solver, args.num_steps)
    try:
        sampler = sampler_for_nfe(args.solver, args.nfe)
    except ValueError as e:
        raise ValueError(f"--nfe {args.nfe} with --solver {args.solver}: {e}") from None
    if sampler.nfe != args.nfe and "nfe" in args.given:
        warnings.warn(
            f"--nfe {args.nfe}: --solver {args.solver} cannot make exactly {args.nfe} "
            f"evaluations; sampling with {sampler.num_steps} steps ({sampler.nfe} NFE), the "
            "most that fit (give --num-steps to choose the steps)",
            stacklevel=1,
        )
    return sampler


def card_seed(card: dict) -> int | None:
    """The seed a card was fitted with (``settings.seed``), or None."""
    settings = card.get("settings") or {}
    seed = settings.get("seed")
    return seed if isinstance(seed, int) else None


def register(subparsers) -> None:
    from ..data import DATASETS
    from ..sampling import SAMPLERS

    p = subparsers.add_parser(
        "evaluate",
        help="sample-quality metrics (FD, sliced W2, MMD, KL, mode coverage) as JSON",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a `schedopt train` output directory (or its network/)")
    src.add_argument("--samples", help="a .npy file of samples, shape (n, *event_shape)")
    p.add_argument(
        "--dataset", choices=DATASETS, help="data set to compare with (default: the model's)"
    )
    seed = int_range(0, MAX_SEED)
    p.add_argument(
        "--seed",
        type=seed,
        default=None,
        help=f"first sampling / projection seed (default 0; with --card {HELD_OUT_SEED})",
    )
    p.add_argument(
        "--seeds",
        type=int_range(1, 100),
        default=None,
        help="sampling seeds, --num-samples each; metrics get 95%% t-intervals (with --model; "
        f"default 1, with --card {CARD_SEEDS})",
    )
    p.add_argument(
        "--card",
        help="with --model: a schedule card or `schedopt optimize` run directory, sampled with "
        "the solver, steps and grid end it records on held-out seeds",
    )
    p.add_argument("--data-seed", type=seed, help="seed of a generated data set (default: model's)")
    p.add_argument(
        "--num-samples",
        type=int_range(1, 1_000_000),
        default=1000,
        help="samples to draw (with --model; default 1000)",
    )
    p.add_argument(
        "--nfe",
        type=int_range(1, MAX_STEPS),
        default=DEFAULT_NFE,
        help=f"denoiser evaluations per sample (with --model; default {DEFAULT_NFE}): the "
        "most steps of --solver whose evaluations fit, rounded down (Heun: 2N - 1 in N steps)",
    )
    p.add_argument(
        "--num-steps",
        type=int_range(1, MAX_STEPS),
        default=None,
        metavar="N",
        help="sampler steps instead of --nfe (with --model)",
    )
    solver = p.add_mutually_exclusive_group()
    solver.add_argument(
        "--solver",
        default="heun",
        choices=SAMPLERS,
        help="any sampler name, e.g. heun, dpmpp-2m, unipc (with --model; default heun)",
    )
    add_deprecated_alias(solver, "--sampler", "--solver", "solver", choices=SAMPLERS)
    p.add_argument(
        "--schedule",
        default="edm",
        help="family name or schedule card/checkpoint (with --model)",
    )
    p.add_argument("--out", help="also write the metrics JSON here")
    p.add_argument("--png", help="also plot the samples to this PNG")
    p.set_defaults(func=run)


#: Options that apply to sampling a --model only.
MODEL_ONLY = ("num_samples", "nfe", "num_steps", "solver", "schedule", "card", "seeds")


def run(args) -> int:
    from ..data import load_dataset
    from ..data.plotting import plot_samples
    from ..io.atomic import atomic_write_json
    from ..metrics import evaluate_samples, format_metrics, mean_interval
    from ..models.nnx_adapter import NNXDenoiser, load_network, read_network_metadata

    if args.samples is not None:
        ignored = [f"--{d.replace('_', '-')}" for d in MODEL_ONLY if d in args.given]
        if ignored:
            raise ValueError(f"{', '.join(ignored)} applies to --model only, not --samples")
    for option in ("out", "png"):
        if getattr(args, option) is not None:
            check_output_file(f"--{option}", getattr(args, option))
    meta, info, schedule, samples, solver, card = {}, {}, None, None, None, None
    if args.model:
        net_dir = network_dir("--model", args.model)
        meta = read_network_metadata(net_dir)
        if args.card is not None:
            card, schedule, solver = card_sampling(args)
        else:
            schedule = parse_schedule(args.schedule)
            solver = model_sampler(args)
    else:
        samples = load_npy("--samples", args.samples)
        if samples.ndim < 2 or samples.shape[0] < 2 or not np.issubdtype(samples.dtype, np.number):
            raise ValueError(
                f"--samples {args.samples!r} must hold >= 2 numeric samples of shape "
                f"(n, *event_shape), got shape {samples.shape} and dtype {samples.dtype}"
            )
        if np.iscomplexobj(samples) or not np.all(np.isfinite(samples)):
            raise ValueError(f"--samples {args.samples!r} must hold finite real numbers")
    first = args.seed if args.seed is not None else (HELD_OUT_SEED if args.card else 0)
    num_seeds = args.seeds or (CARD_SEEDS if args.card else 1)
    seeds = list(range(first, first + num_seeds))
    fit_seed = None if card is None else card_seed(card)
    if fit_seed is not None and fit_seed in seeds:
        raise ValueError(
            f"--seed {first} with --seeds {num_seeds} includes the seed the card was fitted "
            f"with ({fit_seed}): held-out evaluation needs other seeds"
        )
    if first + num_seeds - 1 > MAX_SEED:
        raise ValueError(f"--seed {first} + --seeds {num_seeds} exceeds the largest seed")
    name = args.dataset or meta.get("dataset")
    if name is None:
        raise ValueError("--dataset is needed with --samples (or a model that records one)")
    data_seed = args.data_seed if args.data_seed is not None else meta.get("dataset_seed", 0)
    dataset = load_dataset(name, seed=data_seed)
    if samples is not None and samples.shape[1:] != tuple(dataset.event_shape):
        raise ValueError(
            f"--samples {args.samples!r} holds samples of shape {samples.shape[1:]}, but "
            f"--dataset {name} has shape {tuple(dataset.event_shape)}"
        )
    per_seed, first_samples = [], samples
    denoiser = NNXDenoiser.from_module(load_network(net_dir)) if args.model else None
    t0 = time.perf_counter()
    for seed in seeds:
        key = jax.random.key(seed)
        if args.model:
            samples, info = sample_denoiser(
                denoiser,
                dataset.event_shape,
                args.num_samples,
                key=key,
                schedule=schedule,
                solver=solver,
            )
            if not np.all(np.isfinite(samples)):
                raise ValueError(
                    f"sampling --model {args.model!r} with {info['sampler']} at {info['nfe']} "
                    f"NFE gave non-finite samples (seed {seed}); try --x64 or another schedule"
                )
            first_samples = samples if first_samples is None else first_samples
        per_seed.append(evaluate_samples(samples, dataset, key=jax.random.fold_in(key, 1)))
    if args.model:
        info["sampling_seconds"] = round(time.perf_counter() - t0, 2)
    samples = first_samples
    metrics, intervals = per_seed[0], None
    if len(per_seed) > 1:
        metrics, intervals = {}, {}
        for k, v in per_seed[0].items():
            values = [m[k] for m in per_seed]
            if not isinstance(v, float):
                continue
            if all(np.isfinite(values)):
                intervals[k] = mean_interval(values)
                metrics[k] = intervals[k]["mean"]
            else:
                metrics[k] = float("nan")
    bad = sorted(k for k, v in metrics.items() if isinstance(v, float) and not np.isfinite(v))
    if bad:  # reported, as null in the JSON (which has no NaN)
        warnings.warn(
            f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not finite for these samples "
            "(degenerate, e.g. collapsed onto a point, or too few for their dimension); "
            "written as null",
            stacklevel=1,
        )
        metrics = {k: None if k in bad else v for k, v in metrics.items()}
    result = {"dataset": name, **info, "seeds": seeds, "metrics": metrics}
    if intervals is not None:
        result["intervals"] = intervals
    if args.card is not None:
        result["card"] = str(args.card)
    if args.png:
        title = f"{name}, {info['sampler']}, {info['nfe']} NFE" if info else name
        plot_samples(args.png, samples, reference=dataset.test, title=title)
    if args.out:
        atomic_write_json(args.out, result)
    print(format_metrics(metrics), file=sys.stderr)
    print(json.dumps(result, indent=2, allow_nan=False))
    return 0
