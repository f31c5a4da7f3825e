"""Benchmark: the diffrax Euler sampler against a hand-written jitted loop, same denoiser.

Both compute DDIM ``y' = y + (s' - s)(y - D(y, s)) / s`` over the same EDM grid with the
same Gaussian-mixture oracle; the script checks that they agree, then times each
(``--repeats`` runs after a warm-up, interleaved) and prints JSON with the medians and
their ratio ``diffrax / hand`` (target <= 1.15).

    .venv/bin/python scripts/bench_sampler.py            # default sizes
    .venv/bin/python scripts/bench_sampler.py --batch 256 --dim 8 --steps 16 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from schedopt.models import GaussianMixtureDenoiser
from schedopt.sampling import ODESampler
from schedopt.schedules import EDM


def make_denoiser(key, num_components: int, dim: int) -> GaussianMixtureDenoiser:
    k1, k2 = jax.random.split(key)
    means = 2.0 * jax.random.normal(k1, (num_components, dim))
    a = jax.random.normal(k2, (num_components, dim, dim)) / np.sqrt(dim)
    covariances = 0.1 * (a @ jnp.swapaxes(a, 1, 2)) + 0.01 * jnp.eye(dim)
    weights = jnp.full((num_components,), 1.0 / num_components)
    return GaussianMixtureDenoiser(weights, means, covariances)


def hand_written(denoiser, levels, y0):
    """A plain ``lax.fori_loop`` Euler loop over the positive levels, then ``D`` at the end."""

    def body(k, y):
        s, s_next = levels[k], levels[k + 1]
        return y + (s_next - s) * (y - denoiser(y, s)) / s

    y = jax.lax.fori_loop(0, levels.shape[0] - 1, body, y0)
    return denoiser(y, levels[-1])


def _time(fn, *args) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    key_d, key_y = jax.random.split(jax.random.key(0))
    denoiser = make_denoiser(key_d, args.components, args.dim)
    schedule = EDM()
    sampler = ODESampler(args.steps, "euler")
    y0 = schedule.noise_level(1.0) * jax.random.normal(key_y, (args.batch, args.dim))

    diffrax_fn = jax.jit(lambda d, sch, y: sampler(d, sch, y))
    hand_fn = jax.jit(lambda d, sch, y: hand_written(d, sampler.noise_levels(sch), y))
    out_diffrax = jax.block_until_ready(diffrax_fn(denoiser, schedule, y0))
    out_hand = jax.block_until_ready(hand_fn(denoiser, schedule, y0))
    max_diff = float(jnp.max(jnp.abs(out_diffrax - out_hand)))
    scale = float(jnp.max(jnp.abs(out_hand)))

    t_diffrax, t_hand = [], []
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both
        t_diffrax.append(_time(diffrax_fn, denoiser, schedule, y0))
        t_hand.append(_time(hand_fn, denoiser, schedule, y0))
    med_diffrax, med_hand = statistics.median(t_diffrax), statistics.median(t_hand)
    result = {
        "benchmark": "diffrax Euler sampler vs hand-written jitted loop",
        "device": str(jax.devices()[0]),
        "platform": platform.machine(),
        "batch": args.batch,
        "dim": args.dim,
        "components": args.components,
        "num_steps": args.steps,
        "nfe": sampler.nfe,
        "repeats": args.repeats,
        "median_s_diffrax": med_diffrax,
        "median_s_hand": med_hand,
        "ratio_diffrax_over_hand": med_diffrax / med_hand,
        "target_ratio": 1.15,
        "max_abs_difference": max_diff,
        "output_scale": scale,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
