"""``train_denoiser``: denoising score matching for Flax NNX networks, resumable.

One step draws a batch ``x0`` from the data, noise levels ``s`` from the training noise
distribution and ``eps ~ N(0, I)``, and minimises

    E[ w(s) ||D(x0 + s eps; s) - x0||^2 ]      (mean over dimensions)

with optax (Adam, linear warm-up then constant rate, gradient clipping), keeping an
exponential moving average (EMA) of the weights. Everything random is derived from
``fold_in(key(seed), step)``, so a run is deterministic given ``seed`` and a resumed run
is identical to an uninterrupted one. Checkpoints (orbax) hold weights, EMA, optimizer
state and the run's settings; progress shows as a tqdm bar (loss and rate) and each log
record goes to a JSONL file (both written and resumed by :mod:`._training_state`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import ArrayLike

from .._checks import check_finite_float, check_positive_float, check_positive_int
from ..parallel import batch_mesh, check_batch_size, shard_batch
from ..schedules.base import AbstractSchedule
from ._training_state import (
    append_log,
    close_checkpoints,
    learner_and_device_settings,
    restore_or_start,
    resume_log,
    run_settings,
    save_checkpoint,
)
from .nnx_adapter import NNXDenoiser
from .noise import AbstractNoiseDistribution, check_weighting, noise_distribution
from .noise_learning import AbstractNoiseLearner, FixedNoise, noise_learner


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`train_denoiser` returns.

    ``model`` holds the EMA weights (use it for sampling), ``raw_model`` the last
    optimizer iterate; ``denoiser`` is ``model`` as an ``AbstractDenoiser``.
    """

    model: nnx.Module
    raw_model: nnx.Module
    step: int
    history: list[dict]
    noise_learner: AbstractNoiseLearner | None = None
    noise_state: dict | None = None

    @property
    def denoiser(self) -> NNXDenoiser:
        return NNXDenoiser.from_module(self.model)

    @property
    def noise_schedule(self) -> AbstractSchedule | None:
        """The learned training noise distribution as a schedule (``t ~ U(0, 1)`` pushed
        through it), or ``None`` when the run learned none."""
        if self.noise_learner is None:
            return None
        return self.noise_learner.schedule(self.noise_state["params"], self.noise_state["stats"])


@functools.lru_cache(maxsize=32)
def default_optimizer(
    learning_rate: float = 1e-3, warmup_steps: int = 200, clip_norm: float = 1.0
) -> optax.GradientTransformation:
    """Adam with linear warm-up to a constant ``learning_rate`` and global-norm clipping.

    The rate does not depend on the total number of steps, so a run extended later is
    the same as one planned longer. Cached: equal arguments give the same object, so
    training runs with equal settings reuse one compiled step.

    >>> opt = default_optimizer(1e-3)
    >>> state = opt.init({"w": jnp.zeros(2)})
    """
    lr = check_positive_float("learning_rate", learning_rate)
    warm = check_positive_int("warmup_steps", warmup_steps)
    clip = check_positive_float("clip_norm", clip_norm)
    schedule = optax.linear_schedule(lr / warm, lr, warm)
    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(schedule))


def _per_sample(params, learner_params, rest, learner, stats, x0, key, *, graphdef):
    """``((losses, noise_levels), errors)``: each sample's loss ``L = weight * l`` and
    level, as functions of the network's and the noise learner's parameters, and its x0
    error ``l`` (aux)."""
    event_axes = tuple(range(1, x0.ndim))
    key_noise, key_eps = jax.random.split(key)
    s, weight = learner.draw(learner_params, stats, key_noise, x0.shape[0])
    s = s.astype(x0.dtype)
    eps = jax.random.normal(key_eps, x0.shape, x0.dtype)
    y = x0 + s.reshape((-1,) + (1,) * len(event_axes)) * eps
    d = nnx.merge(graphdef, params, rest)(y, s)
    errors = jnp.mean((d - x0) ** 2, axis=event_axes)
    return (weight.astype(x0.dtype) * errors, s), jax.lax.stop_gradient(errors)


@functools.partial(
    jax.jit,
    static_argnames=(
        "graphdef",
        "batch_size",
        "optimizer",
        "learner_optimizer",
        "ema_decay",
        "mesh",
    ),
)
def _train_step(
    state, data, rest, learner, base_key, *, graphdef, batch_size, optimizer,
    learner_optimizer, ema_decay, mesh=None,
):  # fmt: skip
    """One training step ``-> (state, loss, learner_loss)``; batch and noise keys are
    ``fold_in(key, step)``.

    One forward pass gives the per-sample losses; the network's gradient is the pull-back
    of ``learner.network_loss`` through it and the noise learner's that of
    ``learner.learner_loss`` (two backward passes only when the learner is trained).

    One step per call: XLA on CPU computes convolution weight gradients inside
    ``fori_loop``/``scan`` bodies ~100x slower than at top level, so the loop over steps
    stays in Python (dispatch is asynchronous; the host syncs once per log record). The
    settings are static, so runs with equal settings share one compilation.

    With a ``mesh`` (:func:`schedopt.parallel.batch_mesh`) the batch is split across its
    devices (:func:`schedopt.parallel.shard_batch`) and everything else is replicated:
    XLA's partitioner makes each device compute its share of the per-sample losses and
    all-reduces the network's and the noise learner's gradients and statistics, so both
    are sharded alike.
    """
    step = state["step"]
    key_batch, key_loss = jax.random.split(jax.random.fold_in(base_key, step))
    idx = jax.random.randint(key_batch, (batch_size,), 0, data.shape[0])
    x0 = data[idx]
    if mesh is not None:
        x0 = shard_batch(x0, mesh)
    noise_state = state.get("noise", learner.init_state())
    lparams, stats = noise_state["params"], noise_state["stats"]
    per_sample = functools.partial(
        _per_sample, rest=rest, learner=learner, stats=stats, x0=x0, key=key_loss,
        graphdef=graphdef,
    )  # fmt: skip
    (losses, levels), pullback, errors = jax.vjp(per_sample, state["params"], lparams, has_aux=True)
    cotangents = jax.grad(learner.network_loss, argnums=(2, 3))(lparams, stats, losses, levels)
    grads = pullback(cotangents)[0]
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    # EMA with warm-up: the decay grows as (1 + n) / (10 + n) up to ema_decay
    decay = jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))
    ema = jax.tree.map(lambda e, p: e + (1.0 - decay) * (p - e), state["ema"], params)
    new = {"params": params, "ema": ema, "opt_state": opt_state, "step": step + 1}
    learner_loss = jnp.zeros((), losses.dtype)
    if "noise" in state:
        if learner_optimizer is not None:
            learner_loss, (direct, *through) = jax.value_and_grad(
                learner.learner_loss, argnums=(0, 2, 3)
            )(lparams, stats, losses, levels)
            lgrads = jax.tree.map(jnp.add, direct, pullback(tuple(through))[1])
            lupdates, lopt = learner_optimizer.update(lgrads, noise_state["opt_state"], lparams)
            lparams = optax.apply_updates(lparams, lupdates)
            noise_state = {**noise_state, "params": lparams, "opt_state": lopt}
        new["noise"] = {**noise_state, "stats": learner.update_stats(stats, errors, levels)}
    return new, jnp.mean(losses), learner_loss


def train_denoiser(
    model: nnx.Module,
    data: ArrayLike,
    *,
    num_steps: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    optimizer: optax.GradientTransformation | None = None,
    noise: str | AbstractNoiseDistribution | AbstractSchedule = "edm",
    weighting: str = "edm",
    learn_noise: str | AbstractNoiseLearner | None = None,
    noise_learning_rate: float | None = None,
    ema_decay: float = 0.999,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    log_path: str | os.PathLike | None = None,
    log_every: int = 50,
    progress: bool = True,
    callback: Callable[[dict], Any] | None = None,
    hook: Callable[[int, nnx.Module], dict | None] | None = None,
    devices: int | Sequence[jax.Device] | None = None,
) -> TrainResult:
    """Train ``model`` (an NNX denoiser ``model(y, s) -> D``) on ``data`` for ``num_steps`` steps.

    ``data`` has shape ``(n, *event_shape)``. ``noise`` is a named density (``"edm"``,
    ``"log-uniform"``, ``"logit-normal"``), a noise distribution, or any schedule (``t ~
    U(0, 1)`` pushed through it); ``weighting`` one of ``"edm"``, ``"snr"``,
    ``"min-snr"``, ``"uniform"``, ``"vdm"`` (see :mod:`schedopt.models.noise`).
    ``learn_noise`` (``"vdm"``, ``"uncertainty"``, ``"adaptive"`` or a learner) learns the
    training noise distribution or weighting from the losses, with ``noise`` and
    ``weighting`` as its target (see :mod:`schedopt.models.noise_learning`); its
    parameters get their own Adam (rate ``noise_learning_rate``, default
    ``learning_rate``), are checkpointed with the network, and the log records the learned
    density; ``result.noise_schedule`` is it as a schedule. With
    ``checkpoint_dir``, a checkpoint is written every ``checkpoint_every`` steps and at
    the end, and a run finding checkpoints there resumes from the latest one (its settings
    must match). Only ``nnx.Param`` variables are trained; other state stays as given.
    ``callback`` gets each log record (it may raise to stop the run).
    ``hook(step, model)`` runs at every log boundary with the current EMA model; a dict it
    returns is merged into that log record (e.g. the online schedule adaptation of
    Williams et al., Score-Optimal Diffusion Schedules,
    :class:`schedopt.score_optimal.OnlineEqualCost`). A resumed run first calls
    ``hook.resume(records)``, where the hook has that method, with the log records it kept.
    ``devices`` (a count of the first local devices, or the devices) trains data-parallel:
    each step's batch is split across them (``batch_size`` must divide evenly) and the
    weights, optimiser and noise learner are replicated; the device count is recorded in
    the settings, so a resume must use the same.

    >>> import numpy as np
    >>> from schedopt.models.networks import MLPDenoiser
    >>> data = np.random.default_rng(0).normal(size=(256, 2)).astype("float32")
    >>> net = MLPDenoiser(2, width=16, depth=1, sigma_data=1.0, rngs=nnx.Rngs(0))
    >>> result = train_denoiser(net, data, num_steps=20, batch_size=32, progress=False)
    >>> result.step
    20
    """
    num_steps, batch_size, checkpoint_every, log_every, ema_decay = _check_arguments(
        num_steps, batch_size, checkpoint_every, log_every, ema_decay, weighting
    )
    noise = noise_distribution(noise)
    data = _check_data(model, data)
    mesh = _data_mesh(devices, batch_size)
    optimizer_desc = "custom" if optimizer is not None else {"adam": learning_rate, "warmup": 200}
    if optimizer is None:
        optimizer = default_optimizer(learning_rate)
    sigma_data = float(getattr(model, "sigma_data", 0.5))
    learner, learner_optimizer = _noise_learner(
        learn_noise, noise, weighting, sigma_data, seed, noise_learning_rate, learning_rate
    )

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    learned = learner if learn_noise is not None else None  # logged and checkpointed
    state = _initial_state(params, optimizer, learned, learner_optimizer)
    settings = run_settings(
        model, data, batch_size, noise, weighting, ema_decay, seed, optimizer_desc
    )
    settings |= learner_and_device_settings(learned, noise_learning_rate or learning_rate, mesh)
    state = _replicated(state, mesh)
    manager, state = restore_or_start(checkpoint_dir, state, settings)
    bar = None
    try:  # the checkpoints are closed whatever fails from here on
        start = int(state["step"])
        history = resume_log(log_path, start)
        if history and hasattr(hook, "resume"):
            hook.resume(history)  # a stateful hook continues from the kept records

        step_fn = _step_function(
            graphdef, rest, learner, seed, batch_size, optimizer, learner_optimizer, ema_decay, mesh
        )
        data_device = _replicated(jnp.asarray(data), mesh)
        bar = _progress_bar(num_steps, start) if progress else None
        t_start = time.perf_counter()
        step = start
        while step < num_steps:
            count = _chunk_length(step, num_steps, log_every, checkpoint_every)
            t0 = time.perf_counter()
            state, record = _run_chunk(step_fn, state, data_device, count, learned)
            step += count
            record = _timed_record(step, record, count, t0, t_start)
            if hook is not None:
                record.update(hook(step, nnx.merge(graphdef, state["ema"], rest)) or {})
            history.append(record)
            append_log(log_path, record)
            _show_progress(bar, count, record)
            if manager is not None and (step % checkpoint_every == 0 or step == num_steps):
                save_checkpoint(manager, step, state, settings)
            if callback is not None:
                callback(record)
    finally:
        if bar is not None:
            bar.close()
        close_checkpoints(manager)
    return _result(graphdef, rest, state, step, history, learned)


# ---- arguments -------------------------------------------------------------------------


def _check_arguments(num_steps, batch_size, checkpoint_every, log_every, ema_decay, weighting):
    """The counts and ``ema_decay`` checked and converted, in that order; ``weighting`` checked."""
    num_steps = check_positive_int("num_steps", num_steps)
    batch_size = check_positive_int("batch_size", batch_size)
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    log_every = check_positive_int("log_every", log_every)
    ema_decay = check_finite_float("ema_decay", ema_decay)
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"`ema_decay` must be in [0, 1), got ema_decay={ema_decay!r}")
    check_weighting(weighting)
    return num_steps, batch_size, checkpoint_every, log_every, ema_decay


def _data_mesh(devices, batch_size: int) -> Mesh | None:
    """The :func:`schedopt.parallel.batch_mesh` of ``devices`` (None: no sharding; a count:
    the first local devices), refused unless ``batch_size`` splits evenly across it."""
    if devices is None:
        return None
    available = jax.local_devices()
    if isinstance(devices, int) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"`devices` must be between 1 and the {len(available)} local device(s), "
                f"got devices={devices}"
            )
        devices = available[:devices]
    elif not (
        isinstance(devices, Sequence)
        and devices
        and all(isinstance(d, jax.Device) for d in devices)
    ):
        raise ValueError(
            f"`devices` must be a count or a list of jax devices, got devices={devices!r}"
        )
    mesh = batch_mesh(devices)
    check_batch_size("batch_size", batch_size, mesh)
    return mesh


def _check_data(model, data) -> np.ndarray:
    """``data`` as float32, refused unless ``(n, *event_shape)`` and finite."""
    data = np.asarray(data, dtype=np.float32)
    event_shape = getattr(model, "event_shape", None)
    if data.ndim < 2 or data.shape[0] < 1 or (event_shape and data.shape[1:] != tuple(event_shape)):
        raise ValueError(
            f"`data` must have shape (n, {', '.join(map(str, event_shape or ('...',)))}), "
            f"got data.shape={data.shape}"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError("`data` must be finite everywhere")
    return data


# ---- the run's parts -------------------------------------------------------------------


def _noise_learner(learn_noise, noise, weighting, sigma_data, seed, rate, default_rate):
    """The noise learner (:class:`FixedNoise` when nothing is learned) and its optimiser
    (``None`` when it has no trained parameters)."""
    if learn_noise is None:
        learner = FixedNoise(noise, weighting=weighting, sigma_data=sigma_data)
    else:
        learner = noise_learner(
            learn_noise, noise, weighting=weighting, sigma_data=sigma_data, seed=seed
        )
        given = (learner.target.describe(), learner.weighting)
        if given != (noise.describe(), weighting):
            raise ValueError(
                f"`learn_noise` has target {given[0]} with weighting {given[1]!r}, but the "
                f"run has noise {noise.describe()} with weighting {weighting!r}; give the "
                "same target to both"
            )
    if not learner.trainable:
        return learner, None
    rate = default_rate if rate is None else check_positive_float("noise_learning_rate", rate)
    return learner, default_optimizer(rate)


def _initial_state(params, optimizer, learner, learner_optimizer) -> dict:
    """The training state at step 0: weights, their EMA, the optimiser's state and, with a
    noise ``learner``, its state (``"noise"``) and its optimiser's."""
    state = {
        "params": params,
        "ema": jax.tree.map(jnp.copy, params),
        "opt_state": optimizer.init(params),
        "step": jnp.asarray(0, jnp.int32),
    }
    if learner is not None:
        state["noise"] = learner.init_state()
        if learner_optimizer is not None:
            state["noise"]["opt_state"] = learner_optimizer.init(state["noise"]["params"])
    return state


def _replicated(tree, mesh):
    """``tree`` replicated on every device of ``mesh`` (as it is without one)."""
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def _step_function(
    graphdef, rest, learner, seed, batch_size, optimizer, learner_optimizer, ema_decay, mesh
):
    """:func:`_train_step` with everything but ``(state, data)`` bound."""
    return functools.partial(
        _train_step,
        rest=rest,
        learner=learner,
        base_key=jax.random.key(seed),
        graphdef=graphdef,
        batch_size=batch_size,
        optimizer=optimizer,
        learner_optimizer=learner_optimizer,
        ema_decay=ema_decay,
        mesh=mesh,
    )


# ---- chunks of steps -------------------------------------------------------------------


def _chunk_length(step: int, num_steps: int, log_every: int, checkpoint_every: int) -> int:
    """Steps from ``step`` to the next log or checkpoint boundary (or the end)."""
    return min(
        log_every - step % log_every,
        checkpoint_every - step % checkpoint_every,
        num_steps - step,
    )


def _run_chunk(step_fn, state, data, count: int, learner) -> tuple[dict, dict]:
    """``count`` steps, then one sync: the state and the log record's mean losses (and the
    learned density, with a noise ``learner``); a non-finite loss raises."""
    losses, learner_losses = [], []
    for _ in range(count):
        state, loss, learner_loss = step_fn(state, data)
        losses.append(loss)
        learner_losses.append(learner_loss)
    loss = float(jnp.mean(jnp.stack(losses)))
    if not np.isfinite(loss):
        step = int(state["step"])
        raise FloatingPointError(
            f"training loss became {loss} at step {step}; lower the learning rate"
        )
    record = {"loss": loss}
    if learner is not None:
        record["learner_loss"] = float(jnp.mean(jnp.stack(learner_losses)))
        noise = state["noise"]
        record["noise_density"] = learner.logged_density(noise["params"], noise["stats"])
    return state, record


def _timed_record(step: int, record: dict, count: int, t0: float, t_start: float) -> dict:
    """The log record of the chunk of ``count`` steps ending at ``step``, with its timing."""
    return {
        "step": step,
        **record,
        "steps_per_second": count / (time.perf_counter() - t0),
        "elapsed_seconds": time.perf_counter() - t_start,
    }


def _result(graphdef, rest, state, step: int, history: list[dict], learner) -> TrainResult:
    """The :class:`TrainResult` of the final ``state``."""
    return TrainResult(
        model=nnx.merge(graphdef, state["ema"], rest),
        raw_model=nnx.merge(graphdef, state["params"], rest),
        step=step,
        history=history,
        noise_learner=learner,
        noise_state=state.get("noise"),
    )


# ---- progress --------------------------------------------------------------------------


def _progress_bar(num_steps: int, start: int):
    """A tqdm bar over ``num_steps`` steps, ``start`` of them done."""
    from tqdm.auto import tqdm

    return tqdm(total=num_steps, initial=min(start, num_steps), unit="step", dynamic_ncols=True)


def _show_progress(bar, count: int, record: dict) -> None:
    """Advance ``bar`` by ``count`` steps and show the record's loss (nothing without one)."""
    if bar is not None:
        bar.update(count)
        bar.set_postfix(loss=f"{record['loss']:.4f}")
