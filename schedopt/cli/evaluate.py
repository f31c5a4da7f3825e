"""``schedopt evaluate``: sample-quality metrics of a trained model or of saved samples.

    schedopt evaluate --model runs/digits                 # sample at 50 NFE (Heun), score
    schedopt evaluate --samples x.npy --dataset ring      # score saved samples

Metrics are compared with the data set's held-out test split (see
``schedopt.metrics.evaluate_samples``): Fréchet distance of classifier features for
digits, sliced W2, MMD, precision/recall, and for Gaussian mixtures the exact Gaussian KL,
log-likelihood and mode coverage. The JSON goes to stdout (and ``--out``), a table to
stderr.
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
from ._common import MAX_SEED, MAX_STEPS, int_range, load_npy, network_dir
from ._rundir import check_output_file

DEFAULT_NFE = 50


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
) -> tuple[np.ndarray, dict]:
    """``num_samples`` samples from the probability-flow ODE at (at most) ``nfe`` evaluations.

    Returns the samples and a description ``{"sampler", "num_steps", "nfe", "schedule"}``.
    """
    from ..sampling import sampler_for_nfe
    from ..schedules import EDM
    from ..schedules.registry import schedule_to_config

    num_samples = check_positive_int("num_samples", num_samples)
    batch_size = check_positive_int("batch_size", batch_size)
    schedule = EDM() if schedule is None else schedule
    solver = sampler_for_nfe(sampler, nfe)
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
    p.add_argument("--seed", type=seed, default=0, help="sampling / projection seed")
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
        help="denoiser evaluations per sample (with --model)",
    )
    p.add_argument(
        "--sampler",
        default="heun",
        choices=SAMPLERS,
        help="any sampler name, e.g. heun, dpmpp-2m, unipc (with --model; default heun)",
    )
    p.add_argument(
        "--schedule",
        default="edm",
        help="family name or schedule card/checkpoint (with --model)",
    )
    p.add_argument("--out", help="also write the metrics JSON here")
    p.add_argument("--png", help="also plot the samples to this PNG")
    p.set_defaults(func=run)


#: Options that apply to sampling a --model only.
MODEL_ONLY = ("num_samples", "nfe", "sampler", "schedule")


def run(args) -> int:
    from ..data import load_dataset
    from ..data.plotting import plot_samples
    from ..io.atomic import atomic_write_json
    from ..metrics import evaluate_samples, format_table
    from ..models.nnx_adapter import NNXDenoiser, load_network, read_network_metadata

    if args.samples is not None:
        ignored = [f"--{d.replace('_', '-')}" for d in MODEL_ONLY if d in args.given]
        if ignored:
            raise ValueError(f"{', '.join(ignored)} applies to --model only, not --samples")
    for option in ("out", "png"):
        if getattr(args, option) is not None:
            check_output_file(f"--{option}", getattr(args, option))
    meta, info, schedule, samples = {}, {}, None, None
    if args.model:
        net_dir = network_dir("--model", args.model)
        meta = read_network_metadata(net_dir)
        schedule = parse_schedule(args.schedule)
    else:
        samples = load_npy("--samples", args.samples)
        if samples.ndim < 2 or samples.shape[0] < 2 or not np.issubdtype(samples.dtype, np.number):
            raise ValueError(
                f"--samples {args.samples!r} must hold >= 2 numeric samples of shape "
                f"(n, *event_shape), got shape {samples.shape} and dtype {samples.dtype}"
            )
        if np.iscomplexobj(samples) or not np.all(np.isfinite(samples)):
            raise ValueError(f"--samples {args.samples!r} must hold finite real numbers")
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
    key = jax.random.key(args.seed)
    if args.model:
        denoiser = NNXDenoiser.from_module(load_network(net_dir))
        t0 = time.perf_counter()
        samples, info = sample_denoiser(
            denoiser,
            dataset.event_shape,
            args.num_samples,
            key=key,
            nfe=args.nfe,
            sampler=args.sampler,
            schedule=schedule,
        )
        info["sampling_seconds"] = round(time.perf_counter() - t0, 2)
        if not np.all(np.isfinite(samples)):
            raise ValueError(
                f"sampling --model {args.model!r} with --sampler {args.sampler} at --nfe "
                f"{args.nfe} gave non-finite samples; try --x64 or another --schedule"
            )
    metrics = evaluate_samples(samples, dataset, key=jax.random.fold_in(key, 1))
    bad = sorted(k for k, v in metrics.items() if isinstance(v, float) and not np.isfinite(v))
    if bad:  # reported, as null in the JSON (which has no NaN)
        warnings.warn(
            f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not finite for these samples "
            "(degenerate, e.g. collapsed onto a point, or too few for their dimension); "
            "written as null",
            stacklevel=1,
        )
        metrics = {k: None if k in bad else v for k, v in metrics.items()}
    result = {"dataset": name, **info, "metrics": metrics}
    if args.png:
        title = f"{name}, {info['sampler']}, {info['nfe']} NFE" if info else name
        plot_samples(args.png, samples, reference=dataset.test, title=title)
    if args.out:
        atomic_write_json(args.out, result)
    print(format_table(metrics), file=sys.stderr)
    print(json.dumps(result, indent=2, allow_nan=False))
    return 0
