"""A small stochastic optimisation run, used by the kill-and-resume test.

python resume_job.py OUT_DIR [--checkpoint-dir DIR] [--sleep SECONDS] [--seed SEED]

Writes OUT_DIR/schedule (an orbax schedule checkpoint) and OUT_DIR/losses.npy when done.
``--sleep`` slows every step down so that the test can kill the process mid-run.
"""

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from schedopt.gaussian import Spectrum
from schedopt.io.checkpoint import save_schedule
from schedopt.objectives import GaussianKL
from schedopt.objectives.base import AbstractObjective
from schedopt.optimize import optimize
from schedopt.schedules import MonotoneCubic

NUM_ITERATIONS = 40


class NoisyKL(AbstractObjective):
    """Gaussian KL plus a small Monte Carlo term, so the result depends on the key."""

    inner: GaussianKL
    sleep: float = 0.0

    def __call__(self, schedule, key):
        t = jax.random.uniform(key, (4,))
        loss = self.inner(schedule, key) + 1e-3 * jnp.mean(schedule.logsnr(t))
        if self.sleep > 0:
            jax.debug.callback(lambda: time.sleep(self.sleep))
        return loss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint-dir", default=None)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    objective = NoisyKL(GaussianKL(Spectrum([0.25, 1.0, 4.0]), num_steps=6), sleep=args.sleep)
    result = optimize(
        MonotoneCubic.uniform(8),
        objective,
        num_iterations=NUM_ITERATIONS,
        optimizer=optax.adam(3e-2),
        key=jax.random.key(args.seed),
        progress=False,
        chunk_size=7,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=5,
    )
    save_schedule(args.out / "schedule", result.schedule)
    np.save(args.out / "losses.npy", result.losses)


if __name__ == "__main__":
    main()
