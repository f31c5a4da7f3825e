"""``--objective trajectory`` (LD3-style teacher/student) on a Gaussian-mixture oracle.

This module also defines the options and the set-up shared by every sample-based
objective (``trajectory``, ``mmd``, ``sliced-w2``, ``frechet``): the data set, whose exact
mixture gives the denoiser (no training error), the batch size, and the stochastic
samplers' settings. ``--solver`` picks any sampler of :data:`schedopt.sampling.SAMPLERS`
and ``--nfe`` its number of steps.
"""

from __future__ import annotations

from ..._checks import check_positive_int
from . import ObjectiveSetup

# The samplers (diffrax), data sets and models are imported when an objective is built, so
# that the command line's other objectives do not import them.

#: ``--noise`` choices (:data:`schedopt.sampling.NOISES`, checked by a test)
NOISES = ("gaussian", "rademacher", "uniform")

NAME = "trajectory"
HELP = "distance of the N-step output to a many-step solve from the same noise (LD3)"

#: ``--dataset`` values: Gaussian mixtures with an exact posterior mean.
DATASETS = {"gmm-ring": "ring", "gmm-grid": "grid", "gmm-64": "gmm64", "gmm-gaussian": "gaussian"}


def add_arguments(group) -> None:
    group.add_argument(
        "--dataset",
        default="gmm-ring",
        help=f"sample-based objectives: {', '.join(DATASETS)} (exact mixture oracle)",
    )
    group.add_argument("--batch-size", type=int, default=256, help="samples per step")
    group.add_argument("--num-data", type=int, default=4096, help="data rows (discrepancies)")
    group.add_argument(
        "--reference-steps", type=int, default=128, help="teacher steps (Heun, trajectory)"
    )
    group.add_argument("--noise", default="gaussian", choices=NOISES, help="SDE sampler noise")
    group.add_argument("--kappa", type=float, default=1.0, help="euler-maruyama noise variance")
    group.add_argument("--process", default="vp", choices=("vp", "ve"), help="euler-maruyama SDE")
    group.add_argument(
        "--eta", type=float, default=1.0, help="ancestral and dpmpp-2m-sde samplers' eta"
    )


def load_oracle(args):
    """``(denoiser, data, fingerprint)`` for ``--dataset``."""
    from ...data import load_dataset
    from ...models import GaussianMixtureDenoiser

    if args.dataset not in DATASETS:
        raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, got {args.dataset!r}")
    num_data = check_positive_int("num_data", args.num_data)
    ds = load_dataset(DATASETS[args.dataset], seed=args.seed, num_train=num_data, num_test=1)
    denoiser = GaussianMixtureDenoiser.from_mixture(ds.distribution)
    return denoiser, ds.train, {"dataset": args.dataset, "seed": args.seed, "num_data": num_data}


def build_sampler(args):
    """``--solver`` with ``--nfe`` steps and the stochastic samplers' options."""
    from ...sampling import SAMPLERS, make_sampler

    if args.solver not in SAMPLERS:
        raise ValueError(f"--solver must be one of {', '.join(SAMPLERS)}, got {args.solver!r}")
    options = {"final": args.final}
    if args.solver == "euler-maruyama":
        options.update(process=args.process, noise=args.noise, kappa=args.kappa)
    elif args.solver in ("ancestral", "dpmpp-2m-sde"):
        options.update(eta=args.eta, noise=args.noise)
    return make_sampler(args.solver, args.nfe, **options)


def sample_objective_setup(args, name: str) -> ObjectiveSetup:
    """The set-up of any sample-based objective ``name`` from the parsed arguments."""
    from ...baselines import baseline_schedules
    from ...objectives.discrepancy import discrepancy_objective
    from ...objectives.trajectory import TrajectoryMatching

    denoiser, data, fingerprint = load_oracle(args)
    sampler = build_sampler(args)
    init = getattr(args, "init", "vp")
    if name == "trajectory":
        objective = TrajectoryMatching(
            denoiser,
            sampler,
            batch_size=args.batch_size,
            init=init,
            reference_steps=args.reference_steps,
        )
    else:
        objective = discrepancy_objective(
            name,
            denoiser,
            sampler,
            data,
            batch_size=args.batch_size,
            init=init,
            data_batch_size=min(args.batch_size, data.shape[0]),
        )
    references = baseline_schedules(None, args.sigma_min, args.sigma_max)
    return ObjectiveSetup(objective, fingerprint, references)


def build(args) -> ObjectiveSetup:
    return sample_objective_setup(args, NAME)
