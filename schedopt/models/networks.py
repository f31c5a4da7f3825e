"""Flax NNX denoisers with EDM preconditioning: an MLP for vectors, a small U-Net for 8x8 images.

Both compute Karras et al.'s (2022) preconditioned denoiser

    D(y; s) = c_skip(s) y + c_out(s) F(c_in(s) y, c_noise(s)),

``c_skip = sd^2 / (s^2 + sd^2)``, ``c_out = s sd / sqrt(s^2 + sd^2)``,
``c_in = 1 / sqrt(s^2 + sd^2)``, ``c_noise = log(s) / 4`` with ``sd = sigma_data``, where
``F`` is the raw network, conditioned on ``c_noise`` through Fourier features and an MLP.
Each network takes ``(y, noise_level)`` with ``y`` of shape ``(batch, *event_shape)`` and
``noise_level`` a scalar or ``(batch,)``, and returns ``D``. Wrap one in
:class:`~schedopt.models.NNXDenoiser` to use it where an ``AbstractDenoiser`` is expected.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from .._checks import check_positive_float, check_positive_int

ARCHITECTURES = ("mlp", "unet")


def edm_preconditioning(
    noise_level: ArrayLike, sigma_data: float
) -> tuple[Array, Array, Array, Array]:
    """``(c_skip, c_out, c_in, c_noise)`` of EDM at noise level ``s``, elementwise.

    At every ``s`` the target of ``F``, ``(x0 - c_skip y) / c_out``, has unit variance when
    ``x0`` has variance ``sigma_data^2``.

    >>> c_skip, c_out, c_in, c_noise = edm_preconditioning(0.5, 0.5)
    >>> round(float(c_skip), 3), round(float(c_out), 4), round(float(c_in), 4)
    (0.5, 0.3536, 1.4142)
    """
    s = jnp.asarray(noise_level, dtype=jnp.result_type(float))
    total = s**2 + sigma_data**2
    c_skip = sigma_data**2 / total
    c_out = s * sigma_data * jax.lax.rsqrt(total)
    c_in = jax.lax.rsqrt(total)
    c_noise = 0.25 * jnp.log(s)
    return c_skip, c_out, c_in, c_noise


class NoiseEmbedding(nnx.Module):
    """``c_noise -> R^dim``: fixed Fourier features ``sin/cos(2^j pi c_noise)`` and an MLP.

    >>> emb = NoiseEmbedding(16, rngs=nnx.Rngs(0))
    >>> emb(jnp.zeros((3,))).shape
    (3, 16)
    """

    def __init__(self, dim: int, *, num_frequencies: int = 16, rngs: nnx.Rngs):
        self.num_frequencies = check_positive_int("num_frequencies", num_frequencies)
        self.linear1 = nnx.Linear(2 * num_frequencies, dim, rngs=rngs)
        self.linear2 = nnx.Linear(dim, dim, rngs=rngs)

    def __call__(self, c_noise: Float[Array, " batch"]) -> Float[Array, "batch dim"]:
        # c_noise = log(s)/4 spans about [-1.6, 1.1] for s in [0.002, 80]
        freqs = jnp.pi * 2.0 ** jnp.linspace(-2.0, 4.0, self.num_frequencies)
        angles = c_noise[:, None] * freqs
        h = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
        return self.linear2(nnx.silu(self.linear1(h)))


class _EDMDenoiser(nnx.Module):
    """Shared ``__call__``: preconditioning around the raw network ``self.network``."""

    sigma_data: float
    event_shape: tuple[int, ...]

    def network(self, x: Array, c_noise: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, y: Float[Array, "batch ..."], noise_level: ArrayLike) -> Array:
        """``D(y; s)``: the denoised estimate of ``x0``, same shape as ``y``."""
        y = jnp.asarray(y)
        if tuple(y.shape[1:]) != self.event_shape:
            raise ValueError(
                f"`y` must have shape (batch, {', '.join(map(str, self.event_shape))}), "
                f"got y.shape={y.shape}"
            )
        s = jnp.broadcast_to(jnp.asarray(noise_level, y.dtype), y.shape[:1])
        c_skip, c_out, c_in, c_noise = edm_preconditioning(s, self.sigma_data)
        expand = (slice(None),) + (None,) * (y.ndim - 1)
        out = self.network(c_in[expand] * y, c_noise)
        return c_skip[expand] * y + c_out[expand] * out.astype(y.dtype)


class MLPDenoiser(_EDMDenoiser):
    """Residual MLP denoiser for vectors of size ``dim``.

    Block: ``h <- h + W2 silu(W1 LayerNorm(h) + A emb)``; the output layer starts at zero,
    so the untrained denoiser is ``c_skip y``.

    >>> model = MLPDenoiser(2, width=32, depth=2, rngs=nnx.Rngs(0))
    >>> model(jnp.ones((4, 2)), 1.0).shape
    (4, 2)
    """

    def __init__(
        self,
        dim: int,
        *,
        width: int = 256,
        depth: int = 4,
        embed_dim: int = 128,
        sigma_data: float = 0.5,
        rngs: nnx.Rngs,
    ):
        self.dim = check_positive_int("dim", dim)
        self.width = check_positive_int("width", width)
        self.depth = check_positive_int("depth", depth)
        self.embed_dim = check_positive_int("embed_dim", embed_dim)
        self.sigma_data = check_positive_float("sigma_data", sigma_data)
        self.event_shape = (self.dim,)
        self.embed = NoiseEmbedding(embed_dim, rngs=rngs)
        self.linear_in = nnx.Linear(dim, width, rngs=rngs)
        self.norms = nnx.List([nnx.LayerNorm(width, rngs=rngs) for _ in range(depth)])
        self.hidden = nnx.List([nnx.Linear(width, width, rngs=rngs) for _ in range(depth)])
        self.conditions = nnx.List([nnx.Linear(embed_dim, width, rngs=rngs) for _ in range(depth)])
        self.outs = nnx.List([nnx.Linear(width, width, rngs=rngs) for _ in range(depth)])
        self.norm_out = nnx.LayerNorm(width, rngs=rngs)
        self.linear_out = nnx.Linear(width, dim, kernel_init=nnx.initializers.zeros, rngs=rngs)

    def config(self) -> dict:
        """Constructor arguments, JSON-able; :func:`build_network` rebuilds the model."""
        return dict(
            architecture="mlp",
            dim=self.dim,
            width=self.width,
            depth=self.depth,
            embed_dim=self.embed_dim,
            sigma_data=self.sigma_data,
        )

    def network(self, x, c_noise):
        emb = nnx.silu(self.embed(c_noise))
        h = self.linear_in(x)
        for norm, hidden, cond, out in zip(
            self.norms, self.hidden, self.conditions, self.outs, strict=True
        ):
            h = h + out(nnx.silu(hidden(norm(h)) + cond(emb)))
        return self.linear_out(nnx.silu(self.norm_out(h)))


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


class ResBlock(nnx.Module):
    """``x + conv(silu(GN(conv(silu(GN x))) * (1 + scale) + shift))``, scaled by ``1/sqrt 2``."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.GroupNorm(in_channels, num_groups=_groups(in_channels), rngs=rngs)
        self.conv1 = nnx.Conv(in_channels, out_channels, (3, 3), rngs=rngs)
        self.condition = nnx.Linear(embed_dim, 2 * out_channels, rngs=rngs)
        self.norm2 = nnx.GroupNorm(out_channels, num_groups=_groups(out_channels), rngs=rngs)
        self.conv2 = nnx.Conv(
            out_channels, out_channels, (3, 3), kernel_init=nnx.initializers.zeros, rngs=rngs
        )
        self.skip = (
            nnx.Conv(in_channels, out_channels, (1, 1), rngs=rngs)
            if in_channels != out_channels
            else None
        )

    def __call__(self, x: Array, emb: Array) -> Array:
        h = self.conv1(nnx.silu(self.norm1(x)))
        scale, shift = jnp.split(self.condition(emb)[:, None, None, :], 2, axis=-1)
        h = self.norm2(h) * (1.0 + scale) + shift
        h = self.conv2(nnx.silu(h))
        skip = x if self.skip is None else self.skip(x)
        return (skip + h) * (1.0 / math.sqrt(2.0))


class UNetDenoiser(_EDMDenoiser):
    """A small convolutional U-Net for ``(H, W, C)`` images (8x8 digits by default).

    Levels of ``channels[i]`` features, ``num_blocks`` residual blocks each, stride-2
    convolutions down and nearest-neighbour upsampling up, skip connections between
    levels, noise embedding as a per-channel scale and shift in every block.

    >>> model = UNetDenoiser((8, 8, 1), channels=(8, 16), rngs=nnx.Rngs(0))
    >>> model(jnp.zeros((2, 8, 8, 1)), jnp.array([0.1, 10.0])).shape
    (2, 8, 8, 1)
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (8, 8, 1),
        *,
        channels: tuple[int, ...] = (32, 64),
        num_blocks: int = 1,
        embed_dim: int = 128,
        sigma_data: float = 0.5,
        rngs: nnx.Rngs,
    ):
        image_shape = tuple(int(v) for v in image_shape)
        channels = tuple(int(c) for c in channels)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"`image_shape` must be (height, width, channels), got {image_shape}")
        if not channels or min(channels) < 1:
            raise ValueError(f"`channels` must be a non-empty tuple of ints >= 1, got {channels}")
        factor = 2 ** (len(channels) - 1)
        if image_shape[0] % factor or image_shape[1] % factor:
            raise ValueError(
                f"`image_shape` {image_shape[:2]} must be divisible by {factor} for "
                f"{len(channels)} levels, got channels={channels}"
            )
        self.image_shape = image_shape
        self.channels = channels
        self.num_blocks = check_positive_int("num_blocks", num_blocks)
        self.embed_dim = check_positive_int("embed_dim", embed_dim)
        self.sigma_data = check_positive_float("sigma_data", sigma_data)
        self.event_shape = image_shape
        c_img = image_shape[2]
        self.embed = NoiseEmbedding(embed_dim, rngs=rngs)
        self.conv_in = nnx.Conv(c_img, channels[0], (3, 3), rngs=rngs)
        down, downsample, skip_channels = [], [], [channels[0]]
        c_prev = channels[0]
        for level, c in enumerate(channels):
            for _ in range(num_blocks):
                down.append(ResBlock(c_prev, c, embed_dim, rngs=rngs))
                c_prev = c
                skip_channels.append(c)
            if level < len(channels) - 1:
                downsample.append(nnx.Conv(c, c, (3, 3), strides=(2, 2), rngs=rngs))
                skip_channels.append(c)
        self.down = nnx.List(down)
        self.downsample = nnx.List(downsample)
        self.mid = nnx.List([ResBlock(c_prev, c_prev, embed_dim, rngs=rngs) for _ in range(2)])
        up, upsample = [], []
        for level in reversed(range(len(channels))):
            c = channels[level]
            for _ in range(num_blocks + 1):
                up.append(ResBlock(c_prev + skip_channels.pop(), c, embed_dim, rngs=rngs))
                c_prev = c
            if level > 0:
                upsample.append(nnx.Conv(c, c, (3, 3), rngs=rngs))
        self.up = nnx.List(up)
        self.upsample = nnx.List(upsample)
        self.norm_out = nnx.GroupNorm(c_prev, num_groups=_groups(c_prev), rngs=rngs)
        self.conv_out = nnx.Conv(
            c_prev, c_img, (3, 3), kernel_init=nnx.initializers.zeros, rngs=rngs
        )

    def config(self) -> dict:
        """Constructor arguments, JSON-able; :func:`build_network` rebuilds the model."""
        return dict(
            architecture="unet",
            image_shape=list(self.image_shape),
            channels=list(self.channels),
            num_blocks=self.num_blocks,
            embed_dim=self.embed_dim,
            sigma_data=self.sigma_data,
        )

    def network(self, x, c_noise):
        emb = nnx.silu(self.embed(c_noise))
        h = self.conv_in(x)
        skips = [h]
        blocks = iter(self.down)
        for level in range(len(self.channels)):
            for _ in range(self.num_blocks):
                h = next(blocks)(h, emb)
                skips.append(h)
            if level < len(self.channels) - 1:
                h = self.downsample[level](h)
                skips.append(h)
        for block in self.mid:
            h = block(h, emb)
        blocks = iter(self.up)
        for i, level in enumerate(reversed(range(len(self.channels)))):
            for _ in range(self.num_blocks + 1):
                h = next(blocks)(jnp.concatenate([h, skips.pop()], axis=-1), emb)
            if level > 0:
                n, height, width, c = h.shape
                h = jax.image.resize(h, (n, 2 * height, 2 * width, c), "nearest")
                h = self.upsample[i](h)
        return self.conv_out(nnx.silu(self.norm_out(h)))


def build_network(config: dict, *, seed: int = 0) -> MLPDenoiser | UNetDenoiser:
    """A network from its :meth:`config` dict, initialized from ``seed``.

    >>> model = build_network({"architecture": "mlp", "dim": 2, "width": 16, "depth": 1})
    >>> build_network(model.config()).config() == model.config()
    True
    """
    if not isinstance(config, dict) or config.get("architecture") not in ARCHITECTURES:
        got = config.get("architecture") if isinstance(config, dict) else config
        raise ValueError(f"`architecture` must be one of {', '.join(ARCHITECTURES)}, got {got!r}")
    kwargs = {k: v for k, v in config.items() if k != "architecture"}
    cls = MLPDenoiser if config["architecture"] == "mlp" else UNetDenoiser
    if cls is UNetDenoiser:
        for name in ("image_shape", "channels"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
    try:
        return cls(**kwargs, rngs=nnx.Rngs(seed))
    except TypeError as e:
        raise ValueError(f"bad network config {config!r}: {e}") from None


def default_network_config(event_shape: tuple[int, ...], sigma_data: float = 0.5) -> dict:
    """The default architecture for data of ``event_shape``: U-Net for images, else MLP."""
    event_shape = tuple(int(v) for v in event_shape)
    if len(event_shape) == 3:
        abstract = nnx.eval_shape(
            lambda: UNetDenoiser(event_shape, sigma_data=sigma_data, rngs=nnx.Rngs(0))
        )
        return abstract.config()
    if len(event_shape) == 1:
        return dict(architecture="mlp", dim=event_shape[0], sigma_data=float(sigma_data))
    raise ValueError(
        f"no default network for event_shape={event_shape}; expected (d,) or (H, W, C)"
    )
