"""The optax loop that fits a schedule to an objective.

The schedule is split with ``eqx.partition(schedule, eqx.is_inexact_array)``: its
floating-point arrays (knot logits, ``rho``, network weights) are trained, everything
else (static endpoints, integers) is held fixed. Steps run ``chunk_size`` at a time
inside one jitted ``lax.fori_loop`` whose trip count is traced (one compiled program for
every chunk, the last and checkpoint-cut ones included); between chunks the progress bar
and the JSONL log are updated. The key of step ``i`` is ``fold_in(key, i)``, so a run is
deterministic given its seed and can be resumed from ``(params, opt_state, step)`` alone.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from .._checks import check_positive_float, check_positive_int
from .._compile import filter_jit
from ..objectives.base import AbstractObjective
from ..schedules.base import AbstractSchedule


class OptimizationError(RuntimeError):
    """The loss or the parameters became non-finite."""


class OptimizeResult(NamedTuple):
    """What :func:`optimize` returns."""

    schedule: AbstractSchedule
    losses: np.ndarray
    """Loss at every step, evaluated before that step's update."""
    final_loss: float
    """Loss of the returned schedule."""
    num_iterations: int
    seconds: float
    """Wall time of the whole loop, compilation included."""


@functools.cache
def _adam(learning_rate: float) -> optax.GradientTransformation:
    """One ``optax.adam`` per learning rate: ``_run_chunk`` is compiled per optimizer object,
    so a fresh one per call would recompile every :func:`optimize` call."""
    return optax.adam(learning_rate)


def _chunk(params, static, opt_state, objective, optimizer, key, start, length, size):
    """``length`` (traced, at most ``size``) steps from step ``start``; the losses fill the
    first ``length`` of ``size`` entries. The trip count is traced, so that every chunk
    runs one compiled loop body: the steps round alike however a run is chunked."""

    def loss_fn(p, k):
        return objective(eqx.combine(p, static), k)

    def body(i, carry):
        p, state, losses = carry
        loss, grads = eqx.filter_value_and_grad(loss_fn)(p, jax.random.fold_in(key, start + i))
        updates, state = optimizer.update(grads, state, p)
        return eqx.apply_updates(p, updates), state, losses.at[i].set(loss)

    losses = jnp.zeros((size,), jnp.result_type(float))
    return jax.lax.fori_loop(0, length, body, (params, opt_state, losses))


def _evaluation(params, static, objective, key):
    return objective(eqx.combine(params, static), key)


_run_chunk = eqx.filter_jit(_chunk)
_evaluate = eqx.filter_jit(_evaluation)


def _truncate_log(path: Path, step: int) -> None:
    """Keep only the log lines of steps before ``step`` (a resumed run rewrites the rest)."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("step", -1) < step
    ]
    from ..io.atomic import atomic_write_bytes

    atomic_write_bytes(path, "".join(f"{line}\n" for line in kept).encode())


def optimize(
    schedule: AbstractSchedule,
    objective: AbstractObjective,
    *,
    num_iterations: int = 1000,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float = 1e-2,
    key: jax.Array | None = None,
    seed: int = 0,
    log_path: str | Path | None = None,
    progress: bool = True,
    chunk_size: int = 50,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 100,
    compiler_options: dict | None = None,
) -> OptimizeResult:
    """Minimise ``objective(schedule, key)`` over the schedule's floating-point parameters.

    ``optimizer`` defaults to ``optax.adam(learning_rate)``. With ``log_path``, one JSON
    line per step (``{"step", "loss"}``) is written there (a resumed run keeps the lines of
    the steps before its checkpoint and rewrites the rest). Raises
    :class:`OptimizationError` naming the step if the loss becomes non-finite.

    With ``checkpoint_dir``, the parameters, optimizer state, key, step and losses are
    saved there (orbax) every ``checkpoint_every`` steps and at the end, and a run started
    with the same ``checkpoint_dir`` resumes from the newest checkpoint (its key replaces
    ``key``/``seed``), ending with exactly the schedule of an uninterrupted run.

    ``compiler_options`` are XLA's, for the loop and the final evaluation (``None``: the
    defaults); :func:`schedopt._compile.fast_compile_options` suits small problems, whose
    loop runs in less time than XLA's optimisations take to compile.

    >>> from schedopt.schedules import Tangent
    >>> from schedopt.gaussian import Spectrum
    >>> from schedopt.objectives import GaussianKL
    >>> objective = GaussianKL(Spectrum([4.0]), num_steps=8, final="min")
    >>> result = optimize(Tangent(gamma=0.5), objective, num_iterations=300,
    ...                   learning_rate=5e-2, progress=False)
    >>> round(float(result.schedule.gamma), 1)  # the tangent law: gamma = sqrt(c)
    2.0
    """
    if not isinstance(schedule, AbstractSchedule):
        raise ValueError(f"`schedule` must be an AbstractSchedule, got {type(schedule).__name__}")
    if not isinstance(objective, AbstractObjective):
        raise ValueError(
            f"`objective` must be an AbstractObjective, got {type(objective).__name__}"
        )
    total = check_positive_int("num_iterations", num_iterations)
    chunk = check_positive_int("chunk_size", chunk_size)
    if optimizer is None:
        optimizer = _adam(check_positive_float("learning_rate", learning_rate))
    key = jax.random.key(seed) if key is None else key

    params, static = eqx.partition(schedule, eqx.is_inexact_array)
    if not jax.tree_util.tree_leaves(params):
        raise ValueError(
            f"schedule {type(schedule).__name__} has no floating-point parameters to optimise"
        )
    run_chunk, evaluate = _run_chunk, _evaluate
    if compiler_options:
        run_chunk = filter_jit(_chunk, compiler_options)
        evaluate = filter_jit(_evaluation, compiler_options)
    opt_state = optimizer.init(params)
    losses = np.empty((total,), dtype=np.float64)
    step, ckpt = 0, None
    if checkpoint_dir is not None:
        from ..io.checkpoint import OptimizationCheckpointer  # orbax: only when checkpointing

        ckpt = OptimizationCheckpointer(checkpoint_dir, every=checkpoint_every)
        restored = ckpt.restore(params=params, opt_state=opt_state, key=key, schedule=schedule)
        if restored is not None:
            step, params, opt_state, key, history = restored
            if step > total:
                ckpt.close()
                raise ValueError(
                    f"checkpoint_dir {str(checkpoint_dir)!r} holds step {step}, beyond "
                    f"num_iterations={total}"
                )
            losses[:step] = history["losses"][:step]
    if log_path is not None:
        _truncate_log(Path(log_path), step)
    log = open(log_path, "a") if log_path is not None else None  # noqa: SIM115
    started = time.perf_counter()
    try:
        with tqdm(
            total=total, initial=step, disable=not progress, desc="optimize", unit="step"
        ) as bar:
            while step < total:
                length = min(chunk, total - step)
                if ckpt is not None:  # chunks end on checkpoint steps
                    length = min(length, ckpt.every - step % ckpt.every)
                params, opt_state, chunk_losses = run_chunk(
                    params,
                    static,
                    opt_state,
                    objective,
                    optimizer,
                    key,
                    jnp.asarray(step),
                    jnp.asarray(length),
                    min(chunk, total),
                )
                chunk_losses = np.asarray(chunk_losses, dtype=np.float64)[:length]
                losses[step : step + length] = chunk_losses
                if not np.all(np.isfinite(chunk_losses)):
                    bad = step + int(np.argmax(~np.isfinite(chunk_losses)))
                    raise OptimizationError(
                        f"the loss became non-finite at step {bad} ({losses[bad]!r}); "
                        f"lower the learning rate (learning_rate={learning_rate!r}) "
                        "or check the objective"
                    )
                if log is not None:
                    for i, value in enumerate(chunk_losses):
                        log.write(json.dumps({"step": step + i, "loss": float(value)}) + "\n")
                    log.flush()
                step += length
                if ckpt is not None:
                    ckpt.save(
                        step,
                        params=params,
                        opt_state=opt_state,
                        key=key,
                        schedule=eqx.combine(params, static),
                        history={"losses": losses[:step]},
                        force=step == total,
                    )
                bar.update(length)
                bar.set_postfix(loss=f"{chunk_losses[-1]:.4g}")
        final = float(evaluate(params, static, objective, jax.random.fold_in(key, total)))
    finally:
        if log is not None:
            log.close()
        if ckpt is not None:
            ckpt.close()
    if not np.isfinite(final):
        raise OptimizationError(f"the optimised schedule has a non-finite loss ({final!r})")
    return OptimizeResult(
        schedule=eqx.combine(params, static),
        losses=losses,
        final_loss=final,
        num_iterations=total,
        seconds=time.perf_counter() - started,
    )
