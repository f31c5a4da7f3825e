"""``--objective score-work``: the score-optimal schedule of Williams et al. (Score-Optimal
Diffusion Schedules), learned by minimising the path energy of the schedule in the metric of
the transport cost (1 = every step costs the same).

The cost (``--cost corrector`` or ``predictor``) is tabulated once from denoiser evaluations
on ``--cost-intervals`` geometric intervals of the noise range; Algorithm 1's equal-cost
schedule from the same table is printed alongside as ``equal-cost-alg1``.
"""

from __future__ import annotations

from ...data.registry import DATASETS
from .._common import MAX_SAMPLES, dataset_denoiser, int_range, network_dir
from . import ObjectiveSetup

# schedopt.score_optimal is imported by `build` only (the other objectives do not need it);
# the choices below are its COSTS, VELOCITIES and TRACES (checked by a test).
COSTS = ("corrector", "predictor")
VELOCITIES = ("sigma", "one")
TRACES = ("exact", "hutchinson")

NAME = "score-work"
HELP = "Williams et al.: path energy of the score transport cost (corrector, predictor); 1 = equal"
OPTIONS = (
    "cost",
    "cost_dataset",
    "cost_denoiser",
    "cost_velocity",
    "cost_trace",
    "cost_samples",
    "cost_intervals",
)


def add_arguments(group) -> None:
    group.add_argument(
        "--cost",
        default="corrector",
        choices=COSTS,
        help="corrector: v^2 E||score_s' - score_s||^2; predictor: Fisher divergence after "
        "one Euler step (default corrector)",
    )
    group.add_argument(
        "--cost-dataset",
        default="gmm64",
        choices=DATASETS,
        help="data set whose diffused samples the cost averages over (default gmm64, an "
        "exact Gaussian-mixture oracle)",
    )
    group.add_argument(
        "--cost-denoiser",
        default=None,
        help="saved network directory (e.g. runs/digits-edm/network); default: the exact "
        "oracle of a data set with a known density",
    )
    group.add_argument(
        "--cost-velocity",
        default="sigma",
        choices=VELOCITIES,
        help="v(s): sigma (the paper's) or one",
    )
    group.add_argument(
        "--cost-trace",
        default="exact",
        choices=TRACES,
        help="predictor cost's Jacobian terms: exact (d x d) or hutchinson",
    )
    group.add_argument(
        "--cost-samples",
        type=int_range(1, MAX_SAMPLES),
        default=1024,
        help="clean samples the cost averages over",
    )
    group.add_argument(
        "--cost-intervals",
        type=int_range(2, 100_000),
        default=128,
        help="geometric intervals of the cost table",
    )


def check_options(args) -> None:
    """Refuse options of this plug-in that the chosen cost would ignore."""
    if "cost_trace" in args.given and args.cost != "predictor":
        raise ValueError("--cost-trace applies to --cost predictor only")
    if args.cost_denoiser is not None:
        network_dir("--cost-denoiser", args.cost_denoiser)


def build(args) -> ObjectiveSetup:
    import jax

    from ...baselines import baseline_schedules
    from ...data import load_dataset
    from ...objectives.score_work import ScoreWork
    from ...schedules import EDM
    from ...score_optimal import CostTable, make_cost

    dataset = load_dataset(args.cost_dataset, seed=args.seed)
    denoiser = dataset_denoiser(dataset, args.cost_denoiser, "--cost-denoiser")
    x0 = dataset.train[: args.cost_samples]
    cost = make_cost(args.cost, velocity=args.cost_velocity, trace=args.cost_trace)
    table = CostTable.estimate(
        cost,
        denoiser,
        x0,
        jax.random.key(args.seed),
        sigma_min=args.sigma_min,
        sigma_max=args.sigma_max,
        num_intervals=args.cost_intervals,
    )
    ends = dict(sigma_min=args.sigma_min, sigma_max=args.sigma_max)
    references = {"equal-cost-alg1": table.schedule()}
    references.update({f"edm-rho{r:g}": EDM(rho=float(r), **ends) for r in (3, 100)})
    references.update(baseline_schedules(None, args.sigma_min, args.sigma_max))
    fingerprint = {
        "dataset": dataset.name,
        "denoiser": args.cost_denoiser or "oracle",
        "cost_table": table.fingerprint(),
    }
    return ObjectiveSetup(ScoreWork(table), fingerprint, references)
