"""Sharding helpers: split a sample batch over every device of a ``jax.sharding.Mesh``.

Sample-based objectives draw their batch inside ``jit`` and pass it through
:func:`shard_batch`, which constrains the leading (batch) axis to be split over the
mesh axis ``"batch"``; XLA then runs the sampler data-parallel and all-reduces the
loss and its gradient. The same code runs on one CPU, on a multi-GPU host and on
several hosts:

- one host, several devices: nothing to do, the default mesh spans ``jax.devices()``
  (on CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` fakes four devices);
- several hosts (or processes): call :func:`initialize_distributed` in every process
  before anything else, build the same objective everywhere, and assemble arrays
  that each process holds a slice of with :func:`global_batch`.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, ArrayLike

from ._checks import check_positive_int

BATCH_AXIS = "batch"


def batch_mesh(devices=None) -> Mesh:
    """A 1-D mesh with axis ``"batch"`` over ``devices`` (default: all, across processes).

    >>> batch_mesh().axis_names
    ('batch',)
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("`devices` must hold at least one device, got an empty list")
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def batch_sharding(mesh: Mesh | None = None) -> NamedSharding:
    """Leading axis split over the mesh's ``"batch"`` axis, the rest replicated."""
    mesh = batch_mesh() if mesh is None else mesh
    return NamedSharding(mesh, PartitionSpec(BATCH_AXIS))


def shard_batch(x: ArrayLike, mesh: Mesh | None = None) -> Array:
    """Constrain the leading axis of ``x`` to be split over ``mesh`` (no-op on one device).

    Use inside ``jit``; the batch size must be a multiple of the number of devices.

    >>> import jax.numpy as jnp
    >>> shard_batch(jnp.ones((4, 2))).shape
    (4, 2)
    """
    mesh = batch_mesh() if mesh is None else mesh
    x = jax.numpy.asarray(x)
    if mesh.size == 1:
        return x
    if x.ndim < 1 or x.shape[0] % mesh.size:
        raise ValueError(
            f"the batch size must be a multiple of the number of devices ({mesh.size}); "
            f"got an array of shape {x.shape}"
        )
    return jax.lax.with_sharding_constraint(x, batch_sharding(mesh))


def check_batch_size(name: str, batch_size: int, mesh: Mesh | None = None) -> int:
    """``batch_size`` as an int; raises unless it is >= 1 and divisible by the device count."""
    n = check_positive_int(name, batch_size)
    size = (batch_mesh() if mesh is None else mesh).size
    if n % size:
        raise ValueError(
            f"`{name}` must be a multiple of the number of devices ({size}), got {name}={n}"
        )
    return n


def global_batch(local: ArrayLike, mesh: Mesh | None = None) -> Array:
    """Assemble per-process slices (leading axis) into one global batch-sharded array.

    Each process passes its own rows; the result has the rows of all processes in
    process order (``jax.experimental.multihost_utils.host_local_array_to_global_array``).
    On a single process this just places ``local`` on the mesh.
    """
    from jax.experimental import multihost_utils

    mesh = batch_mesh() if mesh is None else mesh
    return multihost_utils.host_local_array_to_global_array(
        np.asarray(local), mesh, PartitionSpec(BATCH_AXIS)
    )


def initialize_distributed(
    coordinator_address: str, num_processes: int, process_id: int, **kwargs
) -> None:
    """``jax.distributed.initialize`` for one of ``num_processes`` processes.

    It first selects gloo for the CPU backend's cross-process collectives (harmless on
    GPU/TPU hosts, where the accelerator's own collectives are used).
    Call it before any other JAX operation, in every process, e.g.
    ``initialize_distributed("10.0.0.1:1234", num_processes=2, process_id=rank)``.
    """
    n = check_positive_int("num_processes", num_processes)
    if not 0 <= int(process_id) < n:
        raise ValueError(f"`process_id` must be in [0, {n}), got process_id={process_id!r}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=n,
        process_id=int(process_id),
        **kwargs,
    )
