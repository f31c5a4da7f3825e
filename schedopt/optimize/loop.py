"""The optax loop that fits a schedule to an objective.

The schedule is split with ``eqx.partition(schedule, eqx.is_inexact_array)``: its
floating-point arrays (knot logits, ``rho``, network weights) are trained, everything
else (static endpoints, integers) is held fixed. Steps run ``chunk_size`` at a time
inside one jitted ``lax.fori_loop`` whose trip count is traced (one compiled program for
every chunk, the last and checkpoint-cut ones included); between chunks the progress bar
and the JSONL log are updated. The key of step ``i`` is ``fold_in(key, i)``, so a run is
deterministic given its seed and can be resumed from ``(params, opt_state, step)`` alone.

Early stopping: with ``validation`` (a function of the schedule, e.g. a trajectory
objective's ``validation_loss`` on its held-out teacher pairs), the schedule is validated
after every chunk; the best validated iterate is returned, and with ``patience`` the run
stops after that many validations without improvement.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
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
from ..io.atomic import atomic_write_bytes
from ..objectives.base import AbstractObjective
from ..objectives.budgets import BudgetRanges
from ..schedules.base import AbstractSchedule
from ..schedules.decoupled import DecoupledTimes

#: ``optimize(loop=...)`` values.
LOOPS = ("auto", "device", "host")


class OptimizationError(RuntimeError):
    """The loss became non-finite during a fit, or at the returned schedule."""


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
    validation: tuple[tuple[int, float], ...] = ()
    """``(step, validation loss)`` after every chunk, with ``validation`` (step 0: the start)."""
    best_step: int | None = None
    """With ``validation``: the step of the returned (best validated) iterate."""


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


def _step(params, static, opt_state, objective, optimizer, key, i):
    """Step ``i``: the loss and one optimizer update (the body of :func:`_chunk`)."""

    def loss_fn(p):
        return objective(eqx.combine(p, static), jax.random.fold_in(key, i))

    loss, grads = eqx.filter_value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(params, updates), opt_state, loss


def _host_chunk(step):
    """A chunk driven from Python: ``length`` calls of the compiled ``step``. XLA's CPU
    backend runs the backward pass of convolutions inside a loop several times slower
    than outside one (a digits U-Net fit: 18.8 s against 5.8 s a step), so a fit through
    a network steps from the host; one dispatch a step costs microseconds against seconds."""

    def chunk(params, static, opt_state, objective, optimizer, key, start, length, size):
        losses = []
        for i in range(int(length)):
            params, opt_state, loss = step(
                params, static, opt_state, objective, optimizer, key, start + i
            )
            losses.append(loss)
        return params, opt_state, jnp.stack(losses)

    return chunk


def _evaluation(params, static, objective, key):
    return objective(eqx.combine(params, static), key)


_run_chunk = eqx.filter_jit(_chunk)
_run_step = eqx.filter_jit(_step)
_evaluate = eqx.filter_jit(_evaluation)


def _open_log(path: Path, losses: np.ndarray):
    """Open the JSONL log for appending after writing one line per step of ``losses`` (the
    steps a resumed run restored from its checkpoint), replacing the file atomically; a
    symbolic link at ``path`` is refused rather than followed."""
    if path.is_symlink():
        raise ValueError(f"log_path {str(path)!r} is a symbolic link; give a plain file path")
    lines = "".join(json.dumps({"step": i, "loss": float(v)}) + "\n" for i, v in enumerate(losses))
    atomic_write_bytes(path, lines.encode())
    return open(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW), "a")  # noqa: SIM115


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
    settings: dict | None = None,
    validation: Callable[[AbstractSchedule], jax.Array] | None = None,
    patience: int | None = None,
    compiler_options: dict | None = None,
    loop: str = "auto",
) -> OptimizeResult:
    """Minimise ``objective(schedule, key)`` over the schedule's floating-point parameters.

    ``optimizer`` defaults to ``optax.adam(learning_rate)``. With ``log_path``, one JSON
    line per step (``{"step", "loss"}``) is written there (a resumed run first rewrites the
    lines of the steps it restored, from the losses in its checkpoint). Raises
    :class:`OptimizationError` naming the step if the loss becomes non-finite.

    With ``checkpoint_dir``, the parameters, optimizer state, key, step and losses are
    saved there (orbax) every ``checkpoint_every`` steps and at the end, and a run started
    with the same ``checkpoint_dir`` resumes from the newest readable checkpoint (its key
    replaces ``key``/``seed``), ending with exactly the schedule of an uninterrupted run.
    ``settings`` (JSON: whatever shapes the result, e.g. the command line) are stored in
    every checkpoint, and resuming from one with other settings raises ``ValueError``
    naming each difference. The directory is locked while the run writes to it.

    With ``validation``, ``validation(schedule)`` is evaluated at the start and after every
    chunk of ``chunk_size`` steps; the returned schedule is the iterate with the lowest
    validation value (``best_step``), and with ``patience`` the loop stops after
    ``patience`` validations in a row without a lower value (``num_iterations`` is then
    the number of steps run). Not combined with ``checkpoint_dir`` (the best iterate is
    not checkpointed).

    ``loop``: ``"device"`` runs each chunk as one compiled ``fori_loop``; ``"host"`` calls
    one compiled step per iteration from Python (for objectives that sample through a
    network, whose convolutions' backward pass XLA's CPU backend runs several times
    slower inside a loop); ``"auto"`` (default) is ``"host"`` when
    ``objective.host_loop`` says so. Both give the same iterates up to rounding.

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
    total, chunk, optimizer, patience, host = _check_arguments(
        schedule,
        objective,
        num_iterations,
        chunk_size,
        optimizer,
        learning_rate,
        validation,
        patience,
        checkpoint_dir,
        loop,
    )
    key = jax.random.key(seed) if key is None else key
    params, static = _trainable(schedule)
    run_chunk, evaluate = _compiled(host, compiler_options)
    opt_state = optimizer.init(params)
    losses = np.empty((total,), dtype=np.float64)
    step, params, opt_state, key, ckpt, log = _start(
        checkpoint_dir,
        checkpoint_every,
        log_path,
        settings,
        schedule,
        params,
        opt_state,
        key,
        losses,
    )
    started = time.perf_counter()
    stopping = _EarlyStopping(validation, patience, static)
    stopping.check(step, params)
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
                _check_finite(chunk_losses, step, learning_rate)
                _append_log(log, step, chunk_losses)
                step += length
                if ckpt is not None:
                    ckpt.save(
                        step,
                        params=params,
                        opt_state=opt_state,
                        key=key,
                        schedule=eqx.combine(params, static),
                        history={"losses": losses[:step]},
                        settings=settings,
                        info={"num_iterations": total},
                        force=step == total,
                    )
                bar.update(length)
                bar.set_postfix(loss=f"{chunk_losses[-1]:.4g}")
                if stopping.check(step, params):
                    break
        params = stopping.best_params(params)
        final = float(evaluate(params, static, objective, jax.random.fold_in(key, total)))
    finally:
        _close(log, ckpt)
    if not np.isfinite(final):
        raise OptimizationError(f"the optimised schedule has a non-finite loss ({final!r})")
    return OptimizeResult(
        schedule=eqx.combine(params, static),
        losses=losses[:step],
        final_loss=final,
        num_iterations=step,
        seconds=time.perf_counter() - started,
        validation=tuple(stopping.history),
        best_step=stopping.best_step,
    )


# ---- the parts of optimize ------------------------------------------------------------


def _check_arguments(
    schedule,
    objective,
    num_iterations,
    chunk_size,
    optimizer,
    learning_rate,
    validation,
    patience,
    checkpoint_dir,
    loop,
):
    """Every argument check of :func:`optimize`; returns ``(num_iterations, chunk_size,
    optimizer, patience, host)`` with the defaults filled in (``host``: step from Python)."""
    if not isinstance(schedule, (AbstractSchedule, BudgetRanges)):
        raise ValueError(
            f"`schedule` must be an AbstractSchedule (or BudgetRanges), got "
            f"{type(schedule).__name__}"
        )
    if not isinstance(objective, AbstractObjective):
        raise ValueError(
            f"`objective` must be an AbstractObjective, got {type(objective).__name__}"
        )
    if _has_time_inputs(schedule) and not objective.runs_sampler:
        raise ValueError(
            f"`objective` {type(objective).__name__} sees only the grid, so the time-input "
            "offsets of a DecoupledTimes schedule would get no gradient: fit it with a "
            "sample-based objective (one that runs the sampler through the denoiser)"
        )
    total = check_positive_int("num_iterations", num_iterations)
    chunk = check_positive_int("chunk_size", chunk_size)
    if optimizer is None:
        optimizer = _adam(check_positive_float("learning_rate", learning_rate))
    if validation is not None and not callable(validation):
        raise ValueError(f"`validation` must be callable or None, got {validation!r}")
    if patience is not None:
        patience = check_positive_int("patience", patience)
        if validation is None:
            raise ValueError("`patience` needs `validation` (early stopping validates)")
    if validation is not None and checkpoint_dir is not None:
        raise ValueError("`validation` cannot be combined with `checkpoint_dir` yet")
    if loop not in LOOPS:
        raise ValueError(f"`loop` must be one of {', '.join(LOOPS)}, got loop={loop!r}")
    host = loop == "host" or (loop == "auto" and bool(getattr(objective, "host_loop", False)))
    return total, chunk, optimizer, patience, host


def _trainable(schedule):
    """``eqx.partition`` into the floating-point arrays that are fitted and the rest."""
    params, static = eqx.partition(schedule, eqx.is_inexact_array)
    if not jax.tree_util.tree_leaves(params):
        raise ValueError(
            f"schedule {type(schedule).__name__} has no floating-point parameters to optimise"
        )
    return params, static


def _compiled(host: bool, compiler_options: dict | None):
    """``(run_chunk, evaluate)``: the shared compiled functions, or ones compiled with
    ``compiler_options``."""
    if not compiler_options:
        return (_host_chunk(_run_step) if host else _run_chunk), _evaluate
    if host:
        run_chunk = _host_chunk(filter_jit(_step, compiler_options))
    else:
        run_chunk = filter_jit(_chunk, compiler_options)
    return run_chunk, filter_jit(_evaluation, compiler_options)


def _start(checkpoint_dir, every, log_path, settings, schedule, params, opt_state, key, losses):
    """Restore the newest checkpoint in ``checkpoint_dir`` (if any; its losses fill
    ``losses``) and open the log; ``(step, params, opt_state, key, checkpointer, log)``."""
    step, ckpt, log = 0, None, None
    try:
        if checkpoint_dir is not None:
            from ..io.checkpoint import OptimizationCheckpointer  # orbax: only when checkpointing

            ckpt = OptimizationCheckpointer(checkpoint_dir, every=every)
            restored = ckpt.restore(
                params=params, opt_state=opt_state, key=key, schedule=schedule, settings=settings
            )
            if restored is not None:
                step, params, opt_state, key, history = restored
                if step > losses.shape[0]:
                    raise ValueError(
                        f"checkpoint_dir {str(checkpoint_dir)!r} holds step {step}, beyond "
                        f"num_iterations={losses.shape[0]}"
                    )
                losses[:step] = history["losses"][:step]
        if log_path is not None:
            log = _open_log(Path(log_path), losses[:step])
    except BaseException:
        _close(None, ckpt)
        raise
    return step, params, opt_state, key, ckpt, log


def _close(log, ckpt) -> None:
    if log is not None:
        log.close()
    if ckpt is not None:
        ckpt.close()


def _check_finite(chunk_losses: np.ndarray, step: int, learning_rate) -> None:
    """Raise :class:`OptimizationError` naming the first step of the chunk (which starts
    at ``step``) whose loss is non-finite."""
    if not np.all(np.isfinite(chunk_losses)):
        i = int(np.argmax(~np.isfinite(chunk_losses)))
        raise OptimizationError(
            f"the loss became non-finite at step {step + i} ({chunk_losses[i]!r}); "
            f"lower the learning rate (learning_rate={learning_rate!r}) or check the objective"
        )


def _append_log(log, step: int, chunk_losses: np.ndarray) -> None:
    if log is not None:
        for i, value in enumerate(chunk_losses):
            log.write(json.dumps({"step": step + i, "loss": float(value)}) + "\n")
        log.flush()


class _EarlyStopping:
    """The best validated iterate so far and the count of validations without a lower
    value; without ``validation`` it validates nothing and never stops."""

    def __init__(self, validation, patience, static):
        self.validate = None if validation is None else eqx.filter_jit(validation)
        self.patience, self.static = patience, static
        self.history: list[tuple[int, float]] = []
        self.best: tuple[int, float, object] | None = None
        self.stale = 0

    def check(self, at: int, params) -> bool:
        """Validate the iterate of step ``at``; ``True`` when the run should stop."""
        if self.validate is None:
            return False
        value = float(self.validate(eqx.combine(params, self.static)))
        self.history.append((at, value))
        if self.best is None or value < self.best[1]:
            self.best, self.stale = (at, value, params), 0
        else:
            self.stale += 1
        return self.patience is not None and self.stale >= self.patience

    def best_params(self, params):
        return params if self.best is None else self.best[2]

    @property
    def best_step(self) -> int | None:
        return None if self.best is None else self.best[0]


def _has_time_inputs(tree) -> bool:
    """Whether ``tree`` (a schedule or :class:`BudgetRanges`) holds a ``DecoupledTimes``."""
    found = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, DecoupledTimes))
    return any(isinstance(x, DecoupledTimes) for x in found)
