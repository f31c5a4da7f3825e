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
An optimisation checkpoint also records the run's ``settings`` (whatever shapes its
result); a restore with other settings is refused naming each difference. When the
newest step cannot be read, the newest readable one is restored instead
(:class:`CheckpointWarning`) and the unreadable ones are renamed ``unreadable-STEP``.

>>> import tempfile, pathlib
>>> from schedopt.schedules import EDM
>>> path = save_schedule(pathlib.Path(tempfile.mkdtemp()) / "ckpt", EDM(rho=5.0))
>>> float(load_schedule(path).rho)
5.0
"""

from __future__ import annotations

import json
import logging
import os
import warnings
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
from .atomic import DirectoryLock

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


class CheckpointReadError(ValueError):
    """A checkpoint's files cannot be read (missing, truncated or corrupt)."""


class CheckpointWarning(UserWarning):
    """A newest checkpoint step was unreadable and an older one was restored instead."""


def _read_error(where: str, e: Exception) -> CheckpointReadError:
    return CheckpointReadError(
        f"checkpoint {where} cannot be read (truncated or corrupt?): {type(e).__name__}: "
        f"{str(e)[:300]}"
    )


def settings_differences(stored: dict, current: dict) -> list[str]:
    """``"key: A in the checkpoint, B now"`` for every key whose value differs.

    >>> settings_differences({"lr": 0.01, "nfe": 10}, {"lr": 0.01, "nfe": 5})
    ['nfe: 10 in the checkpoint, 5 now']
    """
    current = json.loads(json.dumps(current))  # tuples -> lists, as stored
    return [
        f"{k}: {stored.get(k)!r} in the checkpoint, {current.get(k)!r} now"
        for k in sorted(set(stored) | set(current))
        if stored.get(k) != current.get(k)
    ]


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
        raise CheckpointReadError(
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


class CheckpointInfo(NamedTuple):
    """What :func:`checkpoint_info` returns: the newest readable step and its records."""

    step: int
    path: Path
    settings: dict | None
    """The ``settings`` given to :meth:`OptimizationCheckpointer.save` (None: none given)."""
    info: dict
    """The ``info`` given to :meth:`OptimizationCheckpointer.save` (e.g. the target steps)."""
    every: int | None
    """The checkpointer's ``every``."""


def set_aside_steps(directory: Path, steps) -> list[Path]:
    """Rename the step directories ``steps`` of ``directory`` to ``unreadable-STEP`` (kept
    for inspection, no longer listed as checkpoints); return the new paths."""
    moved = []
    for step in steps:
        target, n = directory / f"unreadable-{step}", 1
        while target.exists():
            target, n = directory / f"unreadable-{step}.{n}", n + 1
        os.replace(directory / str(step), target)
        moved.append(target)
    return moved


def _step_dirs(directory: Path) -> list[int]:
    """Committed step numbers in ``directory``, newest first."""
    if not directory.is_dir():
        return []
    return sorted(ocp.utils.checkpoint_steps(directory), reverse=True)


def checkpoint_info(directory: str | os.PathLike) -> CheckpointInfo | None:
    """The newest step of an optimisation checkpoint directory whose records can be read,
    or None when there is none; reads the JSON ``meta`` item only (no arrays, no lock).

    >>> import tempfile, optax, jax
    >>> from schedopt.schedules import EDM
    >>> params = eqx.filter(EDM(), eqx.is_inexact_array)
    >>> d = tempfile.mkdtemp()
    >>> with OptimizationCheckpointer(d, every=1) as ckpt:
    ...     _ = ckpt.save(3, params=params, opt_state=optax.adam(0.1).init(params),
    ...                   settings={"lr": 0.1}, info={"num_iterations": 9})
    >>> checkpoint_info(d).settings, checkpoint_info(d).info
    ({'lr': 0.1}, {'num_iterations': 9})
    """
    directory = Path(directory).absolute()
    for step in _step_dirs(directory):
        path = directory / str(step)
        try:
            meta = _read_meta(path, repr(str(path)))
        except CheckpointReadError:
            continue
        return CheckpointInfo(
            step, path, meta.get("settings"), meta.get("info") or {}, meta.get("every")
        )
    return None


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

    While open it holds the :class:`~schedopt.io.atomic.DirectoryLock` of ``directory``:
    a second checkpointer on the same directory, in any process, raises
    :class:`~schedopt.io.atomic.DirectoryInUseError` until :meth:`close`.

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
        if self.directory.is_symlink():
            raise ValueError(
                f"checkpoint_dir {str(self.directory)!r} is a symbolic link; give its target"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = DirectoryLock(self.directory, what="checkpoint directory").acquire()
        try:
            self._manager = self._open_manager()
        except BaseException:
            self._lock.release()
            raise

    def _open_manager(self) -> ocp.CheckpointManager:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=self.max_to_keep,
            enable_async_checkpointing=False,
            cleanup_tmp_directories=True,
        )
        return ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "params", "history", "meta")
        )

    def __enter__(self) -> OptimizationCheckpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Finish pending writes, release orbax's resources and the directory lock."""
        try:
            self._manager.wait_until_finished()
            self._manager.close()
        finally:
            self._lock.release()

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
        settings: dict | None = None,
        info: dict | None = None,
        force: bool = False,
    ) -> bool:
        """Save when ``step % every == 0`` (or ``force``); return whether it saved.

        ``schedule`` (the full schedule, parameters and static fields) is recorded in the
        JSON ``meta`` item so that :func:`load_schedule` can read the directory.
        ``history`` holds arrays of any length (e.g. the losses so far), restored as is.
        ``settings`` (JSON) describe what shapes the run's result: :meth:`restore` with
        other settings is refused. ``info`` (JSON) is recorded without being checked
        (e.g. the planned number of iterations); :func:`checkpoint_info` reads both.
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
            "every": self.every,
            "key_impl": impl,
            "schedule": None if schedule is None else schedule_to_config(schedule),
            "leaves": _leaf_specs(state),
            "params_leaves": _leaf_specs(state["params"]),
            "settings": None if settings is None else json.loads(json.dumps(settings)),
            "info": json.loads(json.dumps(info or {})),
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
        settings: dict | None = None,
    ) -> RestoredState | None:
        """``(step, params, opt_state, key, history)`` from the newest checkpoint, or None.

        ``params``, ``opt_state`` and ``key`` are templates with the run's structure (the
        freshly initialised values); a checkpoint with another family, optimizer or
        parameter shapes, or (when ``settings`` is given) other settings, raises
        ``ValueError`` naming its path. A newest step that cannot be read is skipped for
        the newest one that can (with a :class:`CheckpointWarning`) and renamed
        ``unreadable-STEP``; if none can be read, ``ValueError`` lists them.
        """
        unreadable = []
        for step in self._manager.all_steps()[::-1] if self._manager.all_steps() else ():
            try:
                restored = self._restore_step(step, params, opt_state, key, schedule, settings)
            except CheckpointReadError as e:
                unreadable.append((step, str(e)))
                continue
            if unreadable:
                self._set_aside([s for s, _ in unreadable])
                warnings.warn(
                    f"resumed from step {step} of {str(self.directory)!r}: newer steps could "
                    f"not be read ({unreadable[0][1]}) and were renamed "
                    + ", ".join(f"unreadable-{s}" for s, _ in unreadable),
                    CheckpointWarning,
                    stacklevel=2,
                )
            return restored
        if unreadable:
            raise ValueError(
                f"no checkpoint in {str(self.directory)!r} can be read: "
                + "; ".join(message for _, message in unreadable)
            )
        return None

    def _set_aside(self, steps: list[int]) -> None:
        """Rename unreadable step directories so that orbax no longer lists them."""
        set_aside_steps(self.directory, steps)
        self._manager.reload()

    def _restore_step(self, step, params, opt_state, key, schedule, settings):
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
        if settings is not None:
            if meta.get("settings") is None:
                raise ValueError(
                    f"checkpoint {where} records no settings to check this run against "
                    "(written by an older schedopt?); resume it without settings or start "
                    "in another directory"
                )
            differ = settings_differences(meta["settings"], settings)
            if differ:
                raise ValueError(
                    f"checkpoint {where} was made with other settings: {'; '.join(differ)}"
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
