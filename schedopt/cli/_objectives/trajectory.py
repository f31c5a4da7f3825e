"""``--objective trajectory`` (LD3-style teacher/student) on a Gaussian-mixture oracle.

This module also defines the options and the set-up shared by every sample-based
objective (``trajectory``, ``mmd``, ``sliced-w2``, ``frechet``): the data set, whose exact
mixture gives the denoiser (no training error), the batch size, and the stochastic
samplers' settings. ``--solver`` picks any sampler of :data:`schedopt.sampling.SAMPLERS`
and ``--num-steps`` its number of steps (its NFE follows from the solver).

``--torch-model PATH`` replaces the oracle with a PyTorch denoiser
(:func:`schedopt.integrations.torch_models.load_torch_denoiser`: a diffusers
``UNet2DModel`` directory, a pipeline directory or ``module:factory``), and
``--sigma-min``/``--sigma-max`` default to the model's table range; the discrepancy
objectives then compare with ``--torch-data`` (the bundled digits, channels first, or a
``.npy`` of shape ``(n, *event)`` in the model's layout). On the digits, the
discrepancies see the samples clipped to [-1, 1], and the Fréchet objective the digits
classifier's features (what the FD metric compares). The sampler's NFE counts denoiser
calls; a guided model (from a factory) costs two model evaluations per call, and the card's
fingerprint records ``model_evaluations``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..._checks import check_positive_int
from .._common import MAX_SAMPLES, MAX_STEPS, int_range
from . import ObjectiveSetup

# The samplers (diffrax), data sets and models are imported when an objective is built, so
# that the command line's other objectives do not import them.

NAME = "trajectory"
HELP = "distance of the N-step output to a many-step solve from the same noise (LD3)"
#: ``--torch-model`` and its options (every sample-based objective reads them).
TORCH_OPTIONS = ("torch_model", "torch_prediction", "torch_data")
OPTIONS = (
    "dataset", "batch_size", "reference_steps", "num_pairs", "patience", "init", *TORCH_OPTIONS
)  # fmt: skip
#: The options the discrepancy objectives (mmd, sliced-w2, frechet) read.
DISCREPANCY_OPTIONS = ("dataset", "batch_size", "num_data", "init", *TORCH_OPTIONS)

#: ``--dataset`` values: the Gaussian mixtures of :mod:`schedopt.data` (exact posterior
#: mean), by their names there.
DATASETS = ("ring", "grid", "gmm64", "gaussian")
#: Their former names here, accepted with a warning.
DEPRECATED_DATASETS = {
    "gmm-ring": "ring", "gmm-grid": "grid", "gmm-64": "gmm64", "gmm-gaussian": "gaussian"
}  # fmt: skip


def dataset_name(text: str) -> str:
    """``--dataset``: a mixture's name in :mod:`schedopt.data`; a former name warns."""
    if text in DEPRECATED_DATASETS:
        import warnings

        new = DEPRECATED_DATASETS[text]
        warnings.warn(f"--dataset {text} is deprecated: use --dataset {new}", FutureWarning, 2)
        return new
    if text not in DATASETS:
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(DATASETS)})"
        )
    return text


def add_arguments(group) -> None:
    group.add_argument(
        "--dataset",
        default="ring",
        type=dataset_name,
        metavar="{" + ",".join(DATASETS) + "}",
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

    group.add_argument(
        "--patience",
        type=int_range(1, 10_000),
        default=None,
        help="trajectory: stop after this many chunks of 50 steps without a lower loss on "
        "the held-out pairs, keeping the best (default: no early stopping)",
    )
    group.add_argument(
        "--torch-model",
        default=None,
        help="a PyTorch denoiser instead of the oracle: a diffusers UNet2DModel directory "
        "(save_pretrained; its scheduler_config.json gives the noise table), a pipeline "
        "directory, or module:factory",
    )
    group.add_argument(
        "--torch-prediction",
        default=None,
        help="override the model's prediction type: eps, v, x0, flow (or diffusers' names)",
    )
    group.add_argument(
        "--torch-data",
        default="digits",
        help="data for --torch-model: digits (bundled, channels first) or a .npy (n, *event)",
    )


def check_options(args) -> None:
    """Refuse ``--patience`` with ``--resume``, ``--torch-prediction`` / ``--torch-data``
    without ``--torch-model``, and ``--dataset`` with it."""
    if getattr(args, "patience", None) is not None and getattr(args, "resume", False):
        raise ValueError("--patience cannot be combined with --resume yet")
    if args.torch_model is None:
        extra = [f for f in ("torch_prediction", "torch_data") if f in args.given]
        if extra:
            flags = " and ".join("--" + f.replace("_", "-") for f in extra)
            raise ValueError(f"{flags} applies with --torch-model only")
    elif "dataset" in args.given:
        raise ValueError("--dataset picks an oracle; with --torch-model give --torch-data")


def solver_names() -> tuple[str, ...]:
    """The samplers (:data:`schedopt.sampling.SAMPLERS`)."""
    from ...sampling import SAMPLERS

    return tuple(SAMPLERS)


def solver_fields(name: str) -> set[str]:
    """The fields of the sampler ``name`` (``eta`` and ``noise`` for ancestral, ...)."""
    from ...sampling import make_sampler

    return {f.name for f in dataclasses.fields(make_sampler(name, 1))}


def load_oracle(args):
    """``(denoiser, data, fingerprint)`` for ``--dataset``."""
    from ...data import load_dataset
    from ...models import GaussianMixtureDenoiser

    num_data = args.num_data
    ds = load_dataset(args.dataset, seed=args.seed, num_train=num_data, num_test=1)
    denoiser = GaussianMixtureDenoiser.from_mixture(ds.distribution)
    return denoiser, ds.train, {"dataset": args.dataset, "seed": args.seed, "num_data": num_data}


def load_torch_target(args):
    """``(denoiser, data, fingerprint, feature_map)`` for ``--torch-model``."""
    import numpy as np

    from ...integrations.torch_models import load_torch_denoiser

    try:
        loaded = load_torch_denoiser(args.torch_model, prediction=args.torch_prediction)
    except ValueError as e:
        raise ValueError(f"--torch-model: {e}") from None
    denoiser = loaded.denoiser
    num_data = check_positive_int("num_data", args.num_data)
    feature_map = None
    if args.torch_data == "digits":
        from ...data.digits import load_digits

        data = np.transpose(load_digits("train")[0], (0, 3, 1, 2))[:num_data]
        feature_map = _digits_metric_space
    else:
        path = Path(args.torch_data)
        if path.suffix != ".npy" or not path.is_file():
            raise ValueError(
                f"--torch-data must be 'digits' or a .npy file, got {args.torch_data!r}"
            )
        data = np.load(path)[:num_data]
        if data.ndim < 2 or not np.issubdtype(data.dtype, np.floating):
            raise ValueError(
                f"--torch-data {args.torch_data!r} must hold floats of shape (n, *event), got "
                f"shape {data.shape} and dtype {data.dtype}"
            )
    if loaded.event_shape is not None and tuple(data.shape[1:]) != loaded.event_shape:
        raise ValueError(
            f"--torch-data {args.torch_data!r} has samples of shape {tuple(data.shape[1:])}, but "
            f"the model takes {loaded.event_shape}"
        )
    if denoiser.noise_range is not None:
        lo, hi = (float(v) for v in denoiser.noise_range)
        # the model's own range unless given (recorded in the card like any given value)
        given = getattr(args, "given", ())
        args.sigma_min = args.sigma_min if "sigma_min" in given else lo
        args.sigma_max = args.sigma_max if "sigma_max" in given else hi
        if not lo * (1 - 1e-5) <= args.sigma_min < args.sigma_max <= hi * (1 + 1e-5):
            raise ValueError(
                f"--sigma-min {args.sigma_min:g} / --sigma-max {args.sigma_max:g} must lie in the "
                f"model's noise range [{lo:.6g}, {hi:.6g}] (its timestep table); e.g. "
                f"--sigma-min {lo:.6g} --sigma-max {hi:.6g}"
            )
    fingerprint = dict(loaded.description, data=args.torch_data, num_data=int(data.shape[0]))
    return denoiser, data, fingerprint, feature_map


def _digits_metric_space(x):
    """Channels-first digits as the FD metric sees them: clipped to [-1, 1]."""
    import jax.numpy as jnp

    return jnp.clip(x, -1.0, 1.0)


def _digits_features(x):
    """The digits classifier's features of clipped channels-first samples."""
    import jax.numpy as jnp

    from ...metrics.classifier import digits_features

    return digits_features(jnp.transpose(jnp.clip(x, -1.0, 1.0), (0, 2, 3, 1)))


def build_sampler(args):
    """``--solver`` with ``--num-steps`` steps and the solver options it has."""
    from ...sampling import make_sampler

    fields = solver_fields(args.solver)
    options = {k: getattr(args, k) for k in ("eta", "kappa", "process", "noise") if k in fields}
    return make_sampler(args.solver, args.num_steps, final=args.final, **options)


def effective_init(args, name: str, time_input: str | None) -> str:
    """The initial-noise convention the objective uses, written back to ``args.init`` so
    that the card records it. ``exact`` (draw from the diffused data) needs clean samples:
    a network (``time_input`` not None) has none, and teacher pairs start from noise, so
    there the default becomes ``ve`` (or ``vp`` for a VP-conditioned network); ``--init
    exact`` given explicitly is refused."""
    if args.init != "exact" or (name != "trajectory" and time_input is None):
        return args.init
    where = "--objective trajectory" if name == "trajectory" else "--torch-model"
    if "init" in getattr(args, "given", ()):
        raise ValueError(
            f"--init exact needs clean data samples, which {where} has not; "
            "give --init ve or --init vp"
        )
    args.init = "vp" if time_input not in (None, "sigma", "edm") else "ve"
    return args.init


def sample_objective_setup(args, name: str) -> ObjectiveSetup:
    """The set-up of any sample-based objective ``name`` from the parsed arguments."""
    from ...baselines import baseline_schedules
    from ...objectives.discrepancy import discrepancy_objective
    from ...objectives.trajectory import TrajectoryMatching

    feature_map, event_shape = None, None
    if getattr(args, "torch_model", None):
        denoiser, data, fingerprint, feature_map = load_torch_target(args)
        event_shape = tuple(data.shape[1:])
        if feature_map is not None and name == "frechet":
            feature_map = _digits_features
    else:
        denoiser, data, fingerprint = load_oracle(args)
    sampler = build_sampler(args)
    init = effective_init(args, name, None if event_shape is None else denoiser.time_input)
    if name == "trajectory":
        objective = TrajectoryMatching(
            denoiser,
            sampler,
            num_pairs=args.num_pairs,
            batch_size=args.batch_size,
            event_shape=event_shape,
            init=init,
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
            feature_map=feature_map,
        )
    if getattr(args, "torch_model", None):
        from ...integrations.torch import model_evaluations

        fingerprint["model_evaluations"] = model_evaluations(sampler, denoiser)
    references = baseline_schedules(None, args.sigma_min, args.sigma_max)
    time_input = None if event_shape is None else denoiser.time_input
    process = {"timestep": "vp", "flow": "flow"}.get(time_input, "ve")
    return ObjectiveSetup(objective, fingerprint, references, process=process)


def build(args) -> ObjectiveSetup:
    return sample_objective_setup(args, NAME)
