"""What :func:`schedopt.models.training.train_denoiser` keeps on disk: orbax checkpoints
(the training state and the run's settings) and the JSONL log, and resuming from both.

A checkpoint step holds ``train`` (weights, EMA, optimiser state, step and, with a noise
learner, its state) and ``settings`` (JSON); a resumed run must have the same settings.
The log has one JSON record per line; a resumed run keeps the records up to its step.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from ..io.atomic import atomic_write_bytes
from ..io.checkpoint import CheckpointWarning, set_aside_steps


def run_settings(
    model, data, batch_size, noise, weighting, ema_decay, seed, optimizer_desc
) -> dict:
    """The run's settings a checkpoint records and a resume must match."""
    config = model.config() if hasattr(model, "config") else {"class": type(model).__name__}
    return {  # a learned noise adds "learn_noise" (runs without one resume as before)
        "network": config,
        "data_shape": list(data.shape),
        "data_fingerprint": fingerprint(data),
        "batch_size": batch_size,
        "noise": noise.describe(),
        "weighting": weighting,
        "ema_decay": ema_decay,
        "seed": seed,
        "optimizer": optimizer_desc,
    }


def learner_and_device_settings(learner, learner_rate, mesh) -> dict:
    """The settings a learned noise (``"learn_noise"``) and a mesh (``"devices"``) add."""
    extra = {}
    if learner is not None:
        extra["learn_noise"] = {**learner.describe(), "learning_rate": learner_rate}
    if mesh is not None:
        extra["devices"] = mesh.size
    return extra


def fingerprint(data: np.ndarray) -> str:
    """A short hash of ``data``'s bytes: a resume must train on the same data."""
    return hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()[:16]


def restore_or_start(checkpoint_dir, state: dict, settings: dict):
    """``(manager, state)``: the checkpoints of ``checkpoint_dir`` and the state to start from."""
    if checkpoint_dir is None:
        return None, state
    manager = checkpoint_manager(checkpoint_dir)
    try:
        return manager, maybe_restore(manager, checkpoint_dir, state, settings)
    except BaseException:
        manager.close()
        raise


def checkpoint_manager(directory) -> ocp.CheckpointManager:
    """A synchronous orbax manager of ``directory`` keeping the two newest steps."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=2, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def save_checkpoint(manager, step: int, state: dict, settings: dict) -> None:
    """Write checkpoint ``step``: the training state and the run's settings."""
    manager.save(
        step,
        args=ocp.args.Composite(
            train=ocp.args.StandardSave(state), settings=ocp.args.JsonSave(settings)
        ),
        force=True,
    )


def close_checkpoints(manager) -> None:
    """Wait for pending writes and close ``manager`` (nothing without one)."""
    if manager is not None:
        manager.wait_until_finished()
        manager.close()


def maybe_restore(manager, directory, state, settings):
    """The state of the newest readable checkpoint (after checking its settings), or
    ``state`` when there is none. Unreadable newer steps are renamed ``unreadable-STEP``
    with a :class:`~schedopt.io.checkpoint.CheckpointWarning`."""
    directory = Path(directory).absolute()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    unreadable = []
    for step in sorted(manager.all_steps() or (), reverse=True):
        where = directory / str(step)
        try:
            saved = manager.restore(step, args=ocp.args.Composite(settings=ocp.args.JsonRestore()))
            saved = saved["settings"]
        except Exception as e:
            unreadable.append(
                (
                    step,
                    f"cannot read the settings of checkpoint {where}: "
                    f"{type(e).__name__}: {str(e)[:200]}",
                )
            )
            continue
        differ = sorted(k for k in settings if saved.get(k) != json.loads(json.dumps(settings[k])))
        if differ:
            details = "; ".join(
                f"{k}: checkpoint {saved.get(k)!r} vs now {settings[k]!r}" for k in differ
            )
            raise ValueError(
                f"checkpoint {where} was made with different settings ({details[:500]}); "
                "use another checkpoint directory or the same settings"
            )
        try:
            restored = manager.restore(
                step, args=ocp.args.Composite(train=ocp.args.StandardRestore(abstract))
            )
        except Exception as e:
            unreadable.append(
                (
                    step,
                    f"cannot restore checkpoint {where} (corrupt or from "
                    f"another model?): {type(e).__name__}: {str(e)[:200]}",
                )
            )
            continue
        if unreadable:
            set_aside_steps(directory, [s for s, _ in unreadable])
            manager.reload()
            warnings.warn(
                f"resumed from step {step}: {unreadable[0][1]}; renamed "
                + ", ".join(f"unreadable-{s}" for s, _ in unreadable),
                CheckpointWarning,
                stacklevel=4,  # the caller of train_denoiser, through restore_or_start
            )
        return restored["train"]
    if unreadable:
        raise ValueError("; ".join(message for _, message in unreadable))
    return state


def resume_log(log_path, start: int) -> list[dict]:
    """Records of an existing JSONL log up to step ``start`` (later ones are dropped)."""
    if log_path is None:
        return []
    log_path = Path(log_path)
    kept = []
    if log_path.exists() and start > 0:
        for line in log_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interruption
            if record.get("step", 0) <= start:
                kept.append(record)
    text = "".join(json.dumps(r) + "\n" for r in kept)
    atomic_write_bytes(log_path, text.encode())
    return kept


def append_log(log_path: str | os.PathLike | None, record: dict) -> None:
    """Append ``record`` as one JSON line to the log (nothing without one)."""
    if log_path is not None:
        with open(log_path, "a") as f:
            f.write(json.dumps(record) + "\n")
