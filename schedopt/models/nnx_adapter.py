"""``NNXDenoiser``: a Flax NNX network seen as an (equinox) ``AbstractDenoiser``.

The network is split once into its graph definition (static, hashable) and its state (a
pytree of arrays); ``__call__`` merges them again, so the adapter can be passed through
``jax.jit``, ``jax.grad`` and diffrax like any other equinox module.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import equinox as eqx
import orbax.checkpoint as ocp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from ..io.atomic import atomic_write_json
from .base import AbstractDenoiser


class NNXDenoiser(AbstractDenoiser):
    """``D(y, s)`` computed by an NNX module ``module(y, noise_level)``.

    >>> import jax, jax.numpy as jnp
    >>> from schedopt.models.networks import MLPDenoiser
    >>> net = MLPDenoiser(2, width=16, depth=1, rngs=nnx.Rngs(0))
    >>> denoiser = NNXDenoiser.from_module(net)
    >>> jax.jit(lambda d, y: d(y, 0.5))(denoiser, jnp.ones((3, 2))).shape
    (3, 2)
    """

    graphdef: nnx.GraphDef = eqx.field(static=True)
    state: nnx.State

    @classmethod
    def from_module(cls, module: nnx.Module) -> NNXDenoiser:
        """Split ``module`` into graph definition and state."""
        graphdef, state = nnx.split(module)
        return cls(graphdef, state)

    def to_module(self) -> nnx.Module:
        """The NNX module, rebuilt from graph definition and state."""
        return nnx.merge(self.graphdef, self.state)

    def __call__(self, y: Float[Array, "batch ..."], noise_level: ArrayLike) -> Array:
        return nnx.merge(self.graphdef, self.state)(y, noise_level)


# ---- saving and loading ----------------------------------------------------------------

NETWORK_FILE = "network.json"
STATE_DIR = "state"


def save_network(path: str | os.PathLike, module: nnx.Module, metadata: dict | None = None) -> Path:
    """Save a network from :mod:`schedopt.models.networks` to directory ``path``.

    Writes ``network.json`` (its :meth:`config` and ``metadata``) and an orbax checkpoint of
    its state, into a temporary directory renamed into place: all or nothing.

    >>> import tempfile
    >>> from schedopt.models.networks import MLPDenoiser
    >>> net = MLPDenoiser(2, width=8, depth=1, rngs=nnx.Rngs(0))
    >>> d = save_network(tempfile.mkdtemp() + "/net", net)
    >>> load_network(d).config() == net.config()
    True
    """
    if not hasattr(module, "config"):
        raise ValueError(f"`module` must have a config() method to be saved, got {type(module)}")
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        _, state = nnx.split(module)
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(tmp / STATE_DIR, state)
            checkpointer.wait_until_finished()
        atomic_write_json(tmp / NETWORK_FILE, {"network": module.config(), **(metadata or {})})
        backup = None
        if path.exists():
            backup = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, backup)
        os.replace(tmp, path)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_network_metadata(path: str | os.PathLike) -> dict:
    """The ``network.json`` of a saved network; errors name the path."""
    file = Path(path) / NETWORK_FILE
    try:
        meta = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read saved network {file}: {e}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("network"), dict):
        raise ValueError(f"{file} has no 'network' config; is it a schedopt network directory?")
    return meta


def load_network(path: str | os.PathLike) -> nnx.Module:
    """Rebuild a network saved by :func:`save_network`; errors name the path."""
    from .networks import build_network

    path = Path(path).absolute()
    meta = read_network_metadata(path)
    abstract = nnx.eval_shape(lambda: build_network(meta["network"]))
    graphdef, abstract_state = nnx.split(abstract)
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            state = checkpointer.restore(path / STATE_DIR, abstract_state)
    except Exception as e:  # orbax raises many types for missing/corrupt/mismatched data
        raise ValueError(
            f"cannot restore network state from {path / STATE_DIR} (does it match "
            f"{path / NETWORK_FILE}?): {type(e).__name__}: {str(e)[:300]}"
        ) from None
    return nnx.merge(graphdef, state)


def load_denoiser(path: str | os.PathLike) -> NNXDenoiser:
    """:func:`load_network` wrapped as an ``AbstractDenoiser``."""
    return NNXDenoiser.from_module(load_network(path))
