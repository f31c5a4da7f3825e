"""An objective plug-in for ``schedopt optimize``: the energy distance between the
sampler's output and the ring mixture (eight Gaussians on a circle, exact denoiser).

schedopt optimize --objective energy_plugin --energy-batch 128
"""

import jax.numpy as jnp

from schedopt.baselines import baseline_schedules
from schedopt.cli import ObjectiveSetup
from schedopt.data import load_dataset
from schedopt.models import GaussianMixtureDenoiser
from schedopt.objectives import SampleDiscrepancy
from schedopt.sampling import make_sampler

NAME = "energy"
HELP = "energy distance between samples and the ring mixture"
OPTIONS = ("energy_batch",)  # the options that build reads (its own here)


def add_arguments(group):
    group.add_argument("--energy-batch", type=int, default=128, help="samples per step")


def energy(x, y, key):
    """2 E|x - y| - E|x - x'| - E|y - y'|, smoothed at 0 so that it is differentiable."""
    del key

    def mean_distance(a, b):
        return jnp.mean(jnp.sqrt(jnp.sum((a[:, None] - b[None]) ** 2, axis=-1) + 1e-12))

    return 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)


def build(args):
    ring = load_dataset("ring", seed=args.seed, num_train=1024, num_test=1)
    objective = SampleDiscrepancy(
        GaussianMixtureDenoiser.from_mixture(ring.distribution),
        make_sampler("euler", args.num_steps, final=args.final),
        ring.train,
        energy,  # any (samples, data, key) -> scalar
        batch_size=args.energy_batch,
        data_batch_size=args.energy_batch,
    )
    return ObjectiveSetup(
        objective,
        fingerprint={"dataset": "ring", "seed": args.seed},
        references=baseline_schedules(None, args.sigma_min, args.sigma_max),
    )
