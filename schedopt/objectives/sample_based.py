"""The base of objectives that run a sampler: ``AbstractSampleObjective``.

Each call draws a batch of initial states from ``key``, shards it over every device of
the mesh (:func:`schedopt.parallel.shard_batch`) and runs ``sampler`` with the schedule
being fitted; subclasses compare the output with a reference (a many-step teacher
solve, or data samples). The mesh is a static field: ``None`` means all devices.
"""

import equinox as eqx
import jax
from equinox import AbstractVar
from jax.sharding import Mesh
from jaxtyping import Array, PRNGKeyArray

from .._checks import check_choice
from ..models.base import AbstractDenoiser
from ..parallel import batch_mesh, check_batch_size, shard_batch
from ..sampling.base import INITS, AbstractSampler, initial_state
from ..schedules.base import AbstractSchedule
from .base import AbstractObjective


class AbstractSampleObjective(AbstractObjective):
    """An objective that samples ``batch_size`` states of shape ``event_shape``.

    Fields every subclass has: ``denoiser``, ``sampler``, ``batch_size``, ``event_shape``,
    ``init`` (``"ve"``, ``"vp"``, or ``"exact"`` when the denoiser has ``sample``) and
    ``mesh``.
    """

    denoiser: AbstractVar[AbstractDenoiser]
    sampler: AbstractVar[AbstractSampler]
    batch_size: AbstractVar[int]
    event_shape: AbstractVar[tuple[int, ...]]
    init: AbstractVar[str]
    mesh: AbstractVar[Mesh | None]

    @property
    def host_loop(self) -> bool:
        """True: a step samples through the denoiser, typically a network whose backward
        pass XLA's CPU backend runs several times slower inside a compiled loop (on an
        oracle the host loop costs one dispatch a step, well under a millisecond)."""
        return True

    @property
    def runs_sampler(self) -> bool:
        return True

    def _check_sample_settings(self) -> None:
        if not isinstance(self.sampler, AbstractSampler):
            raise ValueError(f"`sampler` must be an AbstractSampler, got sampler={self.sampler!r}")
        check_batch_size("batch_size", self.batch_size, self.mesh)
        check_choice("init", self.init, INITS)
        if self.init == "exact" and not hasattr(self.denoiser, "sample"):
            raise ValueError(
                "init='exact' needs clean samples: the denoiser has no `sample` method; "
                "use init='ve' or 'vp'"
            )

    def _mesh(self) -> Mesh:
        return batch_mesh() if self.mesh is None else self.mesh

    def initial_states(self, schedule: AbstractSchedule, key: PRNGKeyArray) -> Array:
        """The sharded batch ``y_0`` at the schedule's first noise level."""
        shape = (self.batch_size, *self.event_shape)
        key_init, key_x0 = jax.random.split(key)
        x0 = None
        if self.init == "exact":
            x0 = self.denoiser.sample(key_x0, self.batch_size).reshape(shape)
        # not stopped: with a learned range the first level s(1), and with it y_0, moves
        y0 = initial_state(key_init, schedule, shape, self.init, x0=jax.lax.stop_gradient(x0))
        return shard_batch(y0, self._mesh())

    def samples(self, schedule: AbstractSchedule, key: PRNGKeyArray) -> Array:
        """Run the sampler from a fresh sharded batch: ``(batch_size, *event_shape)``."""
        key_init, key_run = jax.random.split(key)
        y0 = self.initial_states(schedule, key_init)
        return self.sampler(self.denoiser, schedule, y0, key_run)


def static_field(**kwargs):
    """A static dataclass field (settings that select code paths, never traced)."""
    return eqx.field(static=True, **kwargs)
