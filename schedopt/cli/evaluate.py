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
from pathlib import Path

import jax
import numpy as np

from .._checks import check_positive_int

DEFAULT_NFE = 50


def parse_schedule(text: str):
    """A sampling schedule: a family name (``edm``, ``cosine``, ...) or a card/checkpoint path."""
    from ..schedules import FAMILIES, make_schedule

    if text in FAMILIES:
        return make_schedule(text)
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
    p = subparsers.add_parser(
        "evaluate",
        help="sample-quality metrics (FD, sliced W2, MMD, KL, mode coverage) as JSON",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a `schedopt train` output directory (or its network/)")
    src.add_argument("--samples", help="a .npy file of samples, shape (n, *event_shape)")
    p.add_argument("--dataset", help="data set to compare with (default: the model's own)")
    p.add_argument("--seed", type=int, default=0, help="sampling / projection seed")
    p.add_argument("--data-seed", type=int, help="seed of a generated data set (default: model's)")
    p.add_argument("--num-samples", type=int, default=1000, help="samples to draw (default 1000)")
    p.add_argument("--nfe", type=int, default=DEFAULT_NFE, help="denoiser evaluations per sample")
    p.add_argument(
        "--sampler",
        default="heun",
        help="any sampler name, e.g. heun, dpmpp-2m, unipc (default heun)",
    )
    p.add_argument("--schedule", default="edm", help="family name or schedule card/checkpoint")
    p.add_argument("--out", help="also write the metrics JSON here")
    p.add_argument("--png", help="also plot the samples to this PNG")
    p.set_defaults(func=run)


def _network_dir(path: Path) -> Path:
    if (path / "network" / "network.json").exists():
        return path / "network"
    return path


def run(args) -> int:
    from ..data import load_dataset
    from ..data.plotting import plot_samples
    from ..io.atomic import atomic_write_json
    from ..metrics import evaluate_samples, format_table
    from ..models.nnx_adapter import NNXDenoiser, load_network, read_network_metadata

    meta, info = {}, {}
    if args.model:
        net_dir = _network_dir(Path(args.model))
        meta = read_network_metadata(net_dir)
    name = args.dataset or meta.get("dataset")
    if name is None:
        raise ValueError("--dataset is needed with --samples (or a model that records one)")
    data_seed = args.data_seed if args.data_seed is not None else meta.get("dataset_seed", 0)
    dataset = load_dataset(name, seed=data_seed)
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
            schedule=parse_schedule(args.schedule),
        )
        info["sampling_seconds"] = round(time.perf_counter() - t0, 2)
    else:
        try:
            samples = np.load(args.samples)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read --samples {args.samples!r}: {e}") from None
    metrics = evaluate_samples(samples, dataset, key=jax.random.fold_in(key, 1))
    result = {"dataset": name, **info, "metrics": metrics}
    if args.png:
        title = f"{name}, {info['sampler']}, {info['nfe']} NFE" if info else name
        plot_samples(args.png, samples, reference=dataset.test, title=title)
    if args.out:
        atomic_write_json(args.out, result)
    print(format_table(metrics), file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0
