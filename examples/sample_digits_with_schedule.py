"""Sample the digits model with a schedule loaded into a Flax NNX model.

    python examples/sample_digits_with_schedule.py \
        [--network DIR] [--schedule PATH] [--nfe 10] [--out samples.png]

``--network`` is a directory written by ``schedopt.models.save_network`` (a trained
digits denoiser); without it a small U-Net is trained here for ``--train-steps`` steps
(one to two minutes on CPU; expect rough digits from so short a run).

``--schedule`` is a run directory (``schedule.json``), a schedule card or an orbax
schedule checkpoint, e.g. the output of ``schedopt optimize``; without it EDM's rho=7
schedule is written to a temporary orbax checkpoint and loaded back from there, to show
the path a checkpointed schedule takes.

The schedule lives inside the user's model as a frozen ``NoiseSchedule`` NNX module; the
model's own Euler sampler (DDIM in EDM variables) reads its grid. The script checks the
result against schedopt's diffrax Euler sampler run on the same schedule and start.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from schedopt.data.digits import IMAGE_SHAPE, load_digits, to_pixels
from schedopt.io import NoiseSchedule, load_source, save_schedule
from schedopt.models.networks import build_network
from schedopt.models.nnx_adapter import NNXDenoiser, load_network
from schedopt.models.training import train_denoiser
from schedopt.sampling import ODESampler
from schedopt.schedules import EDM

#: A small U-Net that trains in about a minute on CPU (the default one is ~50x slower).
SMALL_UNET = {
    "architecture": "unet",
    "image_shape": list(IMAGE_SHAPE),
    "channels": [16, 32],
    "num_blocks": 1,
    "embed_dim": 32,
    "sigma_data": 0.5,
}


class DigitsSampler(nnx.Module):
    """A user's model: a denoiser network plus the noise schedule it samples with."""

    def __init__(self, network: nnx.Module, schedule: NoiseSchedule):
        self.network = network
        self.schedule = schedule

    def __call__(self, y0: jax.Array, num_steps: int) -> jax.Array:
        """Euler steps of ``dy/ds = (y - D(y; s)) / s`` over the schedule's grid."""
        sigmas = self.schedule.grid(num_steps)  # N + 1 noise levels, ending in 0
        y = y0
        for i in range(num_steps):
            s, s_next = sigmas[i], sigmas[i + 1]
            denoised = self.network(y, jnp.full((y.shape[0],), s))
            y = y + (s_next - s) * (y - denoised) / s
        return y


def get_network(args) -> nnx.Module:
    if args.network:
        return load_network(args.network)
    data, _ = load_digits("train")
    network = build_network(SMALL_UNET, seed=args.seed)
    print(f"no --network: training a small digits U-Net for {args.train_steps} steps", flush=True)
    result = train_denoiser(
        network, data, num_steps=args.train_steps, batch_size=64, seed=args.seed
    )
    return result.model


def get_schedule(args) -> NoiseSchedule:
    if args.schedule:
        path = Path(args.schedule)
        if path.is_dir() and not (path / "schedule.json").exists():
            return NoiseSchedule.from_checkpoint(path)  # orbax schedule checkpoint
        return NoiseSchedule.from_card(load_source(path))
    checkpoint = Path(tempfile.mkdtemp()) / "edm-schedule"
    save_schedule(checkpoint, EDM(rho=7.0))
    print(f"no --schedule: saved EDM(rho=7) to {checkpoint} and loading it from there")
    return NoiseSchedule.from_checkpoint(checkpoint)


def save_grid(path: Path, images: np.ndarray, columns: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows))
    for ax, image in zip(np.ravel(axes), images, strict=False):
        ax.imshow(to_pixels(image[..., 0]), cmap="gray_r", vmin=0, vmax=16)
    for ax in np.ravel(axes):
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default=None, help="saved digits network directory")
    parser.add_argument("--schedule", default=None, help="run dir, card or schedule checkpoint")
    parser.add_argument("--nfe", type=int, default=10, help="Euler steps (one NFE each)")
    parser.add_argument("--num-samples", type=int, default=32)
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("samples.png"))
    args = parser.parse_args()

    model = DigitsSampler(get_network(args), get_schedule(args))
    sigmas = model.schedule.grid(args.nfe)
    print("sigmas:", ", ".join(f"{float(s):.4g}" for s in sigmas))

    shape = (args.num_samples, *IMAGE_SHAPE)
    y0 = sigmas[0] * jax.random.normal(jax.random.key(args.seed), shape)
    sample = nnx.jit(lambda m, y: m(y, args.nfe))
    images = np.asarray(sample(model, y0))

    # the same schedule, as a plain equinox schedule, through schedopt's diffrax sampler
    reference = ODESampler(args.nfe, "euler")(
        NNXDenoiser.from_module(model.network), model.schedule.schedule, y0
    )
    difference = float(jnp.max(jnp.abs(reference - images)))
    data, _ = load_digits("test")
    print(
        f"NFE {args.nfe}: {len(images)} samples, pixel mean {images.mean():.3f} / std "
        f"{images.std():.3f} (test data {data.mean():.3f} / {data.std():.3f}); "
        f"max |NNX sampler - diffrax Euler| = {difference:.2e}"
    )
    save_grid(args.out, images)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
