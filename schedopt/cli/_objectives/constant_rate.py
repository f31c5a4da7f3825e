"""``--objective constant-rate``: the constant-rate schedule of Okada et al. (Constant Rate
Scheduling), learned by equalising the discrepancy between neighbouring levels of the
sampling grid.

``--measure fd`` (model-free Fréchet distance of the diffused data's features), ``x0``
(change of the denoiser's data prediction) or ``eps`` (of its noise prediction), or a
comma-separated mix with ``--measure-weights``. The direct construction (tabulate the
speed, integrate ``v^xi``, invert) is printed alongside as ``constant-rate-direct``.
"""

from __future__ import annotations

from ...data.registry import DATASETS
from .._common import (
    MAX_SAMPLES,
    dataset_denoiser,
    float_range,
    int_range,
    network_dir,
    parse_floats,
)
from . import ObjectiveSetup

# The library (schedopt.constant_rate: flax, orbax) is imported by `build` only, so that
# the command line's other objectives do not import it.

NAME = "constant-rate"
HELP = "Okada et al.: equal discrepancy (fd, x0 or eps measure) between neighbouring grid levels"

MEASURES = ("fd", "x0", "eps")
FEATURES = ("identity", "classifier")
OPTIONS = (
    "measure",
    "measure_weights",
    "xi",
    "speed_variable",
    "measure_dataset",
    "measure_denoiser",
    "measure_features",
    "measure_samples",
    "speed_points",
)
#: ``--speed-variable`` choices (:data:`schedopt.constant_rate.VARIABLES`, checked by a test)
VARIABLES = ("alpha", "logsnr")


def add_arguments(group) -> None:
    group.add_argument(
        "--measure",
        default="fd",
        help="fd (model-free Fréchet distance), x0 or eps (denoiser-based), or a "
        "comma-separated mix such as fd,x0 (default fd)",
    )
    group.add_argument(
        "--measure-weights",
        default=None,
        help="comma-separated weights of a mixed --measure; each measure is first "
        "normalised to unit length (default: equal)",
    )
    group.add_argument(
        "--xi",
        type=float_range(0, 100),
        default=1.0,
        help="exponent: d(alpha)/dt ∝ v^-xi (1 = constant rate)",
    )
    group.add_argument(
        "--speed-variable",
        default="alpha",
        choices=VARIABLES,
        help="variable the speed is measured per unit of (alpha = VP signal scale, as the paper)",
    )
    group.add_argument(
        "--measure-dataset",
        default="digits",
        choices=DATASETS,
        help="data set the measure diffuses (default digits)",
    )
    group.add_argument(
        "--measure-denoiser",
        default=None,
        help="saved network directory for x0/eps (e.g. runs/digits-edm/network); default: "
        "the exact oracle of a data set with a known density",
    )
    group.add_argument(
        "--measure-features",
        default="identity",
        choices=FEATURES,
        help="features of --measure fd: identity (default, fast), or the digits classifier's "
        "(Okada et al.'s Inception analogue; about 5x slower)",
    )
    group.add_argument(
        "--measure-samples",
        type=int_range(2, MAX_SAMPLES),
        default=1000,
        help="size of the measure's sample bank",
    )
    group.add_argument(
        "--speed-points",
        type=int_range(3, 100_000),
        default=129,
        help="levels of the direct construction's speed table (default 129)",
    )


def measure_names(args) -> list[str]:
    """The measures of ``--measure`` (refused unless each is one of ``MEASURES``)."""
    names = [m.strip() for m in args.measure.split(",") if m.strip()]
    bad = [m for m in names if m not in MEASURES]
    if not names or bad or len(set(names)) != len(names):
        raise ValueError(
            f"--measure must be {', '.join(MEASURES)} or a comma-separated mix of distinct "
            f"ones, got --measure={args.measure!r}"
        )
    return names


def check_options(args) -> None:
    """Refuse options of this plug-in that the chosen measures would ignore."""
    names = measure_names(args)
    given = set(args.given)
    if "measure_weights" in given:
        weights = parse_floats("measure-weights", args.measure_weights)
        if len(names) < 2:
            raise ValueError("--measure-weights applies to a mixed --measure (e.g. fd,x0) only")
        if len(weights) != len(names) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(
                f"--measure-weights needs {len(names)} non-negative numbers, not all 0, got "
                f"{args.measure_weights!r}"
            )
    if "measure_features" in given and "fd" not in names:
        raise ValueError("--measure-features applies to --measure fd only")
    if "measure_denoiser" in given:
        if not {"x0", "eps"} & set(names):
            raise ValueError("--measure-denoiser applies to --measure x0 or eps only")
        network_dir("--measure-denoiser", args.measure_denoiser)
    if args.measure_features == "classifier" and args.measure_dataset != "digits":
        raise ValueError(
            "--measure-features classifier needs --measure-dataset digits, got "
            f"{args.measure_dataset!r}"
        )


def build_measure(args):
    """The (possibly combined) measure named by ``--measure`` and its options."""
    from ...constant_rate import (
        DataPrediction,
        NoisePrediction,
        SampleFrechet,
        combine,
        digits_feature_map,
        logsnr_grid,
    )
    from ...data import load_dataset

    names = measure_names(args)
    dataset = load_dataset(args.measure_dataset, seed=args.seed)
    data = dataset.train
    n = min(args.measure_samples, data.shape[0])
    features = args.measure_features
    measures = []
    for name in names:
        if name == "fd":
            fmap = digits_feature_map() if features == "classifier" else None
            measures.append(
                SampleFrechet.from_data(data, num_samples=n, seed=args.seed, feature_map=fmap)
            )
        else:
            cls = DataPrediction if name == "x0" else NoisePrediction
            batch = 250 if n % 250 == 0 and dataset.is_image else None
            measures.append(
                cls.from_data(
                    dataset_denoiser(dataset, args.measure_denoiser, "--measure-denoiser"),
                    data,
                    num_samples=n,
                    seed=args.seed,
                    batch_size=batch,
                )
            )
    weights = None
    if args.measure_weights is not None:
        weights = parse_floats("measure-weights", args.measure_weights)
    grid = logsnr_grid(args.speed_points, args.sigma_min, args.sigma_max)
    normalize = grid if len(measures) > 1 else None
    return combine(measures, weights, normalize_on=normalize), dataset


def build(args) -> ObjectiveSetup:
    from ...baselines import baseline_schedules
    from ...constant_rate import tabulate_speed
    from ...objectives.constant_rate import ConstantRate

    measure, dataset = build_measure(args)
    objective = ConstantRate(
        measure,
        num_steps=args.num_steps,
        xi=args.xi,
        variable=args.speed_variable,
        final=args.final,
    )
    speed = tabulate_speed(
        measure,
        num_points=args.speed_points,
        sigma_min=args.sigma_min,
        sigma_max=args.sigma_max,
        variable=args.speed_variable,
    )
    references = baseline_schedules(None, args.sigma_min, args.sigma_max)
    references["constant-rate-direct"] = speed.schedule(args.xi)
    fingerprint = {"dataset": dataset.name, "measure": args.measure, "seed": args.seed}
    return ObjectiveSetup(objective, fingerprint, references)
