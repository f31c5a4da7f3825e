"""Orbax checkpoints of schedules and of whole optimisation runs.

Two kinds, both directories written by orbax (to a temporary directory first, renamed
when complete, so a checkpoint appears whole or not at all):

- a **schedule checkpoint** (:func:`save_schedule` / :func:`load_schedule`): the
  schedule's array leaves (bit-exact) plus a JSON ``meta`` item with the family, the
  full config (:func:`~schedopt.schedules.schedule_to_config`) and the leaf shapes, so it
  loads without knowing the family in advance;
- an **optimisation checkpoint** (:class:`OptimizationCheckpointer`): a numbered step
  directory per save holding the schedule parameters, the optax state, the PRNG key and
  the step, so a killed run resumes and ends bit-for-bit where an uninterrupted one would.

Restoring checks the stored family and every leaf's shape and dtype against what the
caller expects and raises a ``ValueError`` naming the checkpoint path when they differ,
when the directory is missing, or when orbax cannot read it (truncated or corrupt files).

>>> import tempfile, pathlib
>>> from schedopt.schedules import EDM
>>> path = save_schedule(pathlib.Path(tempfile.mkdtemp()) / "ckpt", EDM(rho=5.0))
>>> float(load_schedule(path).rho)
5.0
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from .._checks import check_positive_int
from ..schedules.base import AbstractSchedule
from ..schedules.registry import schedule_from_config, schedule_to_config

#: Layout version written into every checkpoint's ``meta`` item.
CHECKPOINT_VERSION = 1
SCHEDULE_KIND = "schedopt-schedule"
OPTIMIZATION_KIND = "schedopt-optimization"

# orbax logs every save at INFO level through absl; keep the console for progress bars.
logging.getLogger("absl").setLevel(logging.WARNING)


# ---- helpers ---------------------------------------------------------------------------


def _leaf_specs(tree: Any) -> dict[str, list]:
    """``{"path": [shape, dtype]}`` for every array leaf of ``tree``."""
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        arr = np.asarray(leaf) if not hasattr(leaf, "dtype") else leaf
        out[jax.tree_util.keystr(path)] = [list(np.shape(arr)), str(arr.dtype)]
    return out


def _check_specs(where: str, stored: dict, expected: dict) -> None:
    """Raise a ``ValueError`` naming the first leaf whose shape or dtype differs."""
    if set(stored) != set(expected):
        only_stored = sorted(set(stored) - set(expected))[:3]
        only_expected = sorted(set(expected) - set(stored))[:3]
        raise ValueError(
            f"checkpoint {where} does not match this run's state: leaves only in the "
            f"checkpoint {only_stored}, only in this run {only_expected} (different "
            "optimizer or schedule family?)"
        )
    for name, spec in expected.items():
        if list(stored[name][0]) != list(spec[0]) or stored[name][1] != spec[1]:
            raise ValueError(
                f"checkpoint {where} does not match this run: leaf {name} has shape "
                f"{tuple(stored[name][0])} and dtype {stored[name][1]} in the checkpoint, "
                f"shape {tuple(spec[0])} and dtype {spec[1]} here"
            )


def _abstract(tree: Any) -> Any:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _key_to_data(key) -> tuple[jax.Array, str | None]:
    """A PRNG key as raw ``uint32`` data plus its implementation name (None: legacy key)."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key), str(jax.random.key_impl(key))
    return key, None


def _key_from_data(data, impl: str | None):
    return data if impl is None else jax.random.wrap_key_data(data, impl=impl)


def _read_error(where: str, e: Exception) -> ValueError:
    return ValueError(
        f"checkpoint {where} cannot be read (truncated or corrupt?): {type(e).__name__}: {e}"
    )


# ---- schedule checkpoints ---------------------------------------------------------------


def save_schedule(path: str | os.PathLike, schedule: AbstractSchedule) -> Path:
    """Write ``schedule`` to the orbax checkpoint directory ``path`` (replacing it whole).

    The array leaves are stored by orbax; the family, config and leaf shapes as JSON.
    """
    if not isinstance(schedule, AbstractSchedule):
        raise ValueError(f"`schedule` must be an AbstractSchedule, got {type(schedule).__name__}")
    path = Path(path).absolute()
    params = eqx.filter(schedule, eqx.is_inexact_array)
    meta = {
        "kind": SCHEDULE_KIND,
        "checkpoint_version": CHECKPOINT_VERSION,
        "schedule": schedule_to_config(schedule),
        "params_leaves": _leaf_specs(params),
    }
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
        ckptr.save(
            path,
            args=ocp.args.Composite(
                params=ocp.args.StandardSave(params), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
    return path


def _read_meta(path: Path, where: str) -> dict:
    if not (path / "meta").is_dir():
        raise ValueError(
            f"checkpoint {where} has no 'meta' item; is it a schedopt checkpoint directory?"
        )
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
            meta = ckptr.restore(path, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as e:  # orbax raises many types for damaged files
        raise _read_error(where, e) from None
    if not isinstance(meta, dict) or meta.get("checkpoint_version") != CHECKPOINT_VERSION:
        version = meta.get("checkpoint_version") if isinstance(meta, dict) else None
        raise ValueError(
            f"checkpoint {where} has checkpoint_version={version!r}; this schedopt reads "
            f"checkpoint_version={CHECKPOINT_VERSION} only"
        )
    return meta


def _expected_schedule(where: str, meta: dict, like: AbstractSchedule | None) -> AbstractSchedule:
    """The template schedule: ``like`` after checking it against the stored family/shapes."""
    stored = meta["schedule"]
    if like is None:
        return schedule_from_config(stored)
    if type(like).family != stored["family"]:
        raise ValueError(
            f"checkpoint {where} holds a {stored['family']!r} schedule, but a "
            f"{type(like).family!r} schedule was expected"
        )
    return like


def load_schedule(
    path: str | os.PathLike, like: AbstractSchedule | None = None
) -> AbstractSchedule:
    """Read a schedule from a checkpoint written by :func:`save_schedule`.

    ``path`` may also be an optimisation checkpoint directory (its newest step is read)
    or one step of it. With ``like`` given, the stored family and parameter shapes must
    match it (the static fields, e.g. endpoints, then come from ``like``).
    """
    path = Path(path).absolute()
    where = repr(str(path))
    if not path.is_dir():
        raise ValueError(f"checkpoint {where} does not exist")
    if not (path / "meta").exists():
        steps = ocp.utils.checkpoint_steps(path)
        if steps:
            return load_schedule(path / str(max(steps)), like)
    meta = _read_meta(path, where)
    if meta.get("schedule") is None:
        raise ValueError(f"checkpoint {where} records no schedule (saved without `schedule=`)")
    template = _expected_schedule(where, meta, like)
    params, static = eqx.partition(template, eqx.is_inexact_array)
    _check_specs(where, meta["params_leaves"], _leaf_specs(params))
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
            restored = ckptr.restore(
                path, args=ocp.args.Composite(params=ocp.args.StandardRestore(_abstract(params)))
            ).params
    except Exception as e:
        raise _read_error(where, e) from None
    return eqx.combine(jax.tree.map(jnp.asarray, restored), static)


# ---- optimisation checkpoints -----------------------------------------------------------


class RestoredState(NamedTuple):
    """What :meth:`OptimizationCheckpointer.restore` returns."""

    step: int
    params: Any
    opt_state: Any
    key: Any
    history: dict[str, np.ndarray]
    """The ``history`` arrays given to :meth:`OptimizationCheckpointer.save` (e.g. losses)."""


class OptimizationCheckpointer:
    """Periodic orbax checkpoints of an optimisation: parameters, optax state, key, step.

    ``directory`` holds one sub-directory per saved step (the newest ``max_to_keep``).
    Use :meth:`restore` once before the loop and :meth:`save` after every step (it saves
    when ``step % every == 0`` or ``force=True``)::

        ckpt = OptimizationCheckpointer(run_dir / "checkpoints", every=50)
        restored = ckpt.restore(params=params, opt_state=opt_state, key=key, schedule=schedule)
        if restored is not None:
            step, params, opt_state, key, history = restored
        ...
        ckpt.save(step, params=params, opt_state=opt_state, key=key, schedule=schedule,
                  history={"losses": losses[:step]})
        ckpt.close()

    >>> import tempfile, optax, jax
    >>> from schedopt.schedules import EDM
    >>> params = eqx.filter(EDM(), eqx.is_inexact_array)
    >>> opt_state = optax.adam(0.1).init(params)
    >>> key = jax.random.key(0)
    >>> with OptimizationCheckpointer(tempfile.mkdtemp(), every=1) as ckpt:
    ...     _ = ckpt.save(3, params=params, opt_state=opt_state, key=key, schedule=EDM())
    ...     ckpt.restore(params=params, opt_state=opt_state, key=key)[0]
    3
    """

    def __init__(self, directory: str | os.PathLike, *, every: int = 100, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        self.every = check_positive_int("checkpoint_every", every)
        self.max_to_keep = check_positive_int("max_to_keep", max_to_keep)
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(
                f"checkpoint_dir {str(self.directory)!r} exists and is not a directory"
            )
        options = ocp.CheckpointManagerOptions(
            max_to_keep=self.max_to_keep,
            enable_async_checkpointing=False,
            cleanup_tmp_directories=True,
        )
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "params", "history", "meta")
        )

    def __enter__(self) -> OptimizationCheckpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Finish pending writes and release orbax's resources."""
        self._manager.wait_until_finished()
        self._manager.close()

    @property
    def latest_step(self) -> int | None:
        """The newest complete step in ``directory``, or None."""
        return self._manager.latest_step()

    def save(
        self,
        step: int,
        *,
        params: Any,
        opt_state: Any,
        key: Any = None,
        schedule: AbstractSchedule | None = None,
        history: dict[str, Any] | None = None,
        force: bool = False,
    ) -> bool:
        """Save when ``step % every == 0`` (or ``force``); return whether it saved.

        ``schedule`` (the full schedule, parameters and static fields) is recorded in the
        JSON ``meta`` item so that :func:`load_schedule` can read the directory.
        ``history`` holds arrays of any length (e.g. the losses so far), restored as is.
        """
        step = int(step)
        if not force and step % self.every != 0:
            return False
        if step in (self._manager.all_steps() or ()):
            return False
        key_data, impl = _key_to_data(key) if key is not None else (None, None)
        state = {"params": params, "opt_state": opt_state, "key": key_data, "step": step}
        state = jax.tree.map(np.asarray, state)
        meta = {
            "kind": OPTIMIZATION_KIND,
            "checkpoint_version": CHECKPOINT_VERSION,
            "step": step,
            "key_impl": impl,
            "schedule": None if schedule is None else schedule_to_config(schedule),
            "leaves": _leaf_specs(state),
            "params_leaves": _leaf_specs(state["params"]),
        }
        items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
        # The parameters once more as their own item, so load_schedule reads them alone.
        items["params"] = ocp.args.StandardSave(state["params"])
        history = {k: np.asarray(v) for k, v in (history or {}).items()}
        if history:  # orbax refuses empty items
            items["history"] = ocp.args.StandardSave(history)
        self._manager.save(step, args=ocp.args.Composite(**items), force=True)
        self._manager.wait_until_finished()
        return True

    def restore(
        self,
        *,
        params: Any,
        opt_state: Any,
        key: Any = None,
        schedule: AbstractSchedule | None = None,
    ) -> RestoredState | None:
        """``(step, params, opt_state, key, history)`` from the newest checkpoint, or None.

        ``params``, ``opt_state`` and ``key`` are templates with the run's structure (the
        freshly initialised values); a checkpoint with another family, optimizer or
        parameter shapes raises ``ValueError`` naming its path.
        """
        step = self._manager.latest_step()
        if step is None:
            return None
        path = self.directory / str(step)
        where = repr(str(path))
        meta = _read_meta(path, where)
        if meta.get("kind") != OPTIMIZATION_KIND:
            raise ValueError(f"checkpoint {where} is a {meta.get('kind')!r}, not an optimisation")
        stored = meta.get("schedule")
        if (
            schedule is not None
            and stored is not None
            and stored["family"] != type(schedule).family
        ):
            raise ValueError(
                f"checkpoint {where} was written for a {stored['family']!r} schedule, but this "
                f"run optimises a {type(schedule).family!r} schedule"
            )
        key_data, impl = _key_to_data(key) if key is not None else (None, None)
        if impl != meta.get("key_impl"):
            raise ValueError(
                f"checkpoint {where} stores a PRNG key of kind {meta.get('key_impl')!r}, but this "
                f"run uses {impl!r}"
            )
        template = {"params": params, "opt_state": opt_state, "key": key_data, "step": step}
        template = jax.tree.map(np.asarray, template)
        _check_specs(where, meta["leaves"], _leaf_specs(template))
        try:
            args = {"state": ocp.args.StandardRestore(_abstract(template))}
            if (path / "history").is_dir():
                args["history"] = ocp.args.StandardRestore()
            items = self._manager.restore(step, args=ocp.args.Composite(**args))
        except Exception as e:
            raise _read_error(where, e) from None
        restored = jax.tree.map(jnp.asarray, items.state)
        history = items.get("history") or {}
        history = {k: np.asarray(v) for k, v in history.items()}
        new_key = None if key is None else _key_from_data(restored["key"], impl)
        return RestoredState(
            int(restored["step"]), restored["params"], restored["opt_state"], new_key, history
        )
