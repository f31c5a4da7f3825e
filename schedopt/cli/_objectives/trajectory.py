"""``--objective trajectory`` (LD3-style teacher/student) on a Gaussian-mixture oracle.

This module also defines the options and the set-up shared by every sample-based
objective (``trajectory``, ``mmd``, ``sliced-w2``, ``frechet``): the data set, whose exact
mixture gives the denoiser (no training error), the batch size, and the stochastic
samplers' settings. ``--solver`` picks any sampler of :data:`schedopt.sampling.SAMPLERS`
and ``--nfe`` its number of steps.
"""

from __future__ import annotations

import dataclasses

from ...baselines import baseline_schedules
from ...data import load_dataset
from ...models import GaussianMixtureDenoiser
from ...objectives.discrepancy import discrepancy_objective
from ...objectives.trajectory import TrajectoryMatching
from ...sampling import SAMPLERS, make_sampler
from .._common import MAX_SAMPLES, MAX_STEPS, int_range
from . import ObjectiveSetup

NAME = "trajectory"
HELP = "distance of the N-step output to a many-step solve from the same noise (LD3)"
OPTIONS = ("dataset", "batch_size", "reference_steps", "num_pairs", "init")
#: The options the discrepancy objectives (mmd, sliced-w2, frechet) read.
DISCREPANCY_OPTIONS = ("dataset", "batch_size", "num_data", "init")

#: ``--dataset`` values: Gaussian mixtures with an exact posterior mean.
DATASETS = {"gmm-ring": "ring", "gmm-grid": "grid", "gmm-64": "gmm64", "gmm-gaussian": "gaussian"}


def add_arguments(group) -> None:
    group.add_argument(
        "--dataset",
        default="gmm-ring",
        choices=tuple(DATASETS),
        help="sample-based objectives: the Gaussian mixture (exact oracle)",
    )
    group.add_argument(
        "--batch-size",
        type=int_range(1, 65536),
        default=None,
        help="samples per step (default 256); trajectory: pairs per step (default: all)",
    )
    group.add_argument(
        "--num-data",
        type=int_range(1, MAX_SAMPLES),
        default=4096,
        help="data rows (discrepancy objectives)",
    )
    group.add_argument(
        "--reference-steps",
        type=int_range(1, MAX_STEPS),
        default=64,
        help="teacher steps (Heun, trajectory)",
    )
    group.add_argument(
        "--num-pairs",
        type=int_range(2, MAX_SAMPLES),
        default=256,
        help="teacher pairs computed once (trajectory; a quarter held out for validation)",
    )


def solver_names() -> tuple[str, ...]:
    """The samplers (:data:`schedopt.sampling.SAMPLERS`)."""
    return tuple(SAMPLERS)


def solver_fields(name: str) -> set[str]:
    """The fields of the sampler ``name`` (``eta`` and ``noise`` for ancestral, ...)."""
    return {f.name for f in dataclasses.fields(make_sampler(name, 1))}


def load_oracle(args):
    """``(denoiser, data, fingerprint)`` for ``--dataset``."""
    num_data = args.num_data
    ds = load_dataset(DATASETS[args.dataset], seed=args.seed, num_train=num_data, num_test=1)
    denoiser = GaussianMixtureDenoiser.from_mixture(ds.distribution)
    return denoiser, ds.train, {"dataset": args.dataset, "seed": args.seed, "num_data": num_data}


def build_sampler(args):
    """``--solver`` with ``--nfe`` steps and the solver options it has."""
    fields = solver_fields(args.solver)
    options = {k: getattr(args, k) for k in ("eta", "kappa", "process", "noise") if k in fields}
    return make_sampler(args.solver, args.nfe, final=args.final, **options)


def sample_objective_setup(args, name: str) -> ObjectiveSetup:
    """The set-up of any sample-based objective ``name`` from the parsed arguments."""
    denoiser, data, fingerprint = load_oracle(args)
    sampler = build_sampler(args)
    init = args.init
    if name == "trajectory":
        objective = TrajectoryMatching(
            denoiser,
            sampler,
            num_pairs=args.num_pairs,
            batch_size=args.batch_size,
            init="vp" if init == "vp" else "ve",  # teacher pairs start from VE or VP noise
            seed=args.seed,
            reference_steps=args.reference_steps,
        )
    else:
        objective = discrepancy_objective(
            name,
            denoiser,
            sampler,
            data,
            batch_size=args.batch_size or 256,
            init=init,
            data_batch_size=min(args.batch_size or 256, data.shape[0]),
        )
    references = baseline_schedules(None, args.sigma_min, args.sigma_max)
    return ObjectiveSetup(objective, fingerprint, references)


def build(args) -> ObjectiveSetup:
    return sample_objective_setup(args, NAME)
