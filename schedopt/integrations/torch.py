"""PyTorch denoisers inside jitted, differentiated JAX code: diffusers checkpoints for every
sampler and objective.

:class:`TorchModel` makes a torch module ``model(x, t, **conditioning) -> prediction`` a JAX
function of ``(x, t)``: the module runs in a ``jax.pure_callback`` (CPU arrays reach torch by
DLPack without a copy; a CUDA module gets them moved to its device), and a ``jax.custom_vjp``
gives JAX the cotangents of both the state ``x`` and the time input ``t`` from
``torch.autograd`` (schedule gradients need ``dD/ds``, which reaches ``s`` through ``t``).
Under ``grad`` the forward pass keeps its torch graph and the backward pass reuses it, so
a value and gradient cost what they cost in torch alone; a graph the backward pass does
not find (evicted, or never kept) is recomputed. The callbacks batch under ``vmap``
(leading axes are folded into the model's batch) and run unrolled, in ``lax.scan`` and
inside ``diffrax.diffeqsolve``'s loop alike.

:class:`TorchDenoiser` turns a prediction into the posterior mean ``D(y; s)`` in EDM
variables (``y = x / alpha``, ``s = sigma / alpha``), by what the model predicts and what
time input it takes:

- ``time_input="timestep"``: a discrete VP model (DDPM, Stable Diffusion) fed
  ``x = y / sqrt(1 + s^2)`` and the *fractional* timestep of ``s`` in its
  ``alphas_cumprod`` table, linear in ``log s`` between entries as diffusers'
  ``_sigma_to_t`` computes it (:meth:`~schedopt.schedules.Tabulated.noise_level_to_timestep`);
- ``"sigma"``: a VE model fed ``x = y`` and ``s`` itself (k-diffusion's ``D(x, sigma)``);
- ``"edm"``: an EDM-preconditioned VE network ``F(c_in y, log(s) / 4)`` with
  ``D = c_skip y + c_out F`` (diffusers' EDM schedulers; ``c_out < 0`` for ``"v"``);
- ``"flow"``: a flow-matching model, ``x = (1 - sigma) x0 + sigma eps`` with
  ``sigma = s / (1 + s)``, fed ``t = time_scale * sigma`` (1000 in diffusers).

``prediction`` is ``"eps"``, ``"v"``, ``"x0"`` or ``"flow"`` (the velocity ``eps - x0``;
diffusers' ``"epsilon"``, ``"v_prediction"``, ``"sample"`` and ``"flow_prediction"`` are
accepted too); the conversions are :class:`~schedopt.models.PredictionDenoiser`'s.

**Guidance and NFE.** With ``guidance_scale=w`` and ``unconditional=...``, each call
evaluates the model on the conditional and the unconditional inputs (one torch call on a
doubled batch, as diffusers' pipelines do) and returns
``pred_u + w (pred_c - pred_u)``, which is the same guidance on ``D`` (``D`` is affine in
the prediction). A sampler's ``nfe`` counts denoiser calls; a guided denoiser costs
:attr:`TorchDenoiser.evaluations_per_call` = 2 model evaluations per call, so a schedule's
cost in model evaluations is :func:`model_evaluations` ``= sampler.nfe * 2`` (the CLI
records both in the card's fingerprint). :attr:`TorchModel.evaluations` counts the model
evaluations actually run.

torch is imported when a :class:`TorchModel` is built, not when this module is imported.

Example (not run here: it needs torch and diffusers)::

    from diffusers import DDPMScheduler, UNet2DModel
    from schedopt.integrations.torch import TorchDenoiser
    from schedopt.sampling import ODESampler
    denoiser = TorchDenoiser.from_scheduler(UNet2DModel.from_pretrained(path),
                                            DDPMScheduler.from_pretrained(path))
    x = ODESampler(5, "dpmpp-2m").sample(denoiser, schedule, key, (64, 1, 8, 8), init="vp")
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._checks import check_choice, check_finite_float, check_positive_float
from ..models.adapters import PredictionDenoiser
from ..models.base import AbstractDenoiser
from ..schedules.tabulated import Tabulated
from ._torch_bridge import Handle, bridge, import_torch

PREDICTIONS = ("eps", "v", "x0", "flow")
TIME_INPUTS = ("timestep", "sigma", "edm", "flow")
#: diffusers' ``prediction_type`` names -> schedopt's.
DIFFUSERS_PREDICTIONS = {
    "epsilon": "eps",
    "v_prediction": "v",
    "sample": "x0",
    "flow_prediction": "flow",
}
_PROCESS = {"timestep": "vp", "sigma": "ve", "flow": "flow"}
#: Torch graphs kept between a forward pass and its backward pass, per model, by default.
MAX_SAVED_GRAPHS = 32


def prediction_name(prediction: str) -> str:
    """schedopt's name of a prediction type (diffusers' names are mapped).

    >>> prediction_name("v_prediction"), prediction_name("eps")
    ('v', 'eps')
    """
    name = DIFFUSERS_PREDICTIONS.get(prediction, prediction)
    if name not in PREDICTIONS:
        known = ", ".join(PREDICTIONS + tuple(DIFFUSERS_PREDICTIONS))
        raise ValueError(f"`prediction` must be one of {known}; got prediction={prediction!r}")
    return name


class TorchModel(eqx.Module):
    """A torch module ``module(x, t, **conditioning) -> prediction`` as a jit-able,
    differentiable JAX function of ``x (batch, *event)`` and ``t (batch,)``.

    ``conditioning``: keyword tensors (leading size 1 or the batch; others, e.g. flags,
    passed as they are). ``guidance_scale`` with ``unconditional`` (the same keys):
    classifier-free guidance, ``pred_u + w (pred_c - pred_u)``, from one doubled batch.
    ``max_saved_graphs``: forward graphs kept for backward passes (older ones are
    recomputed when needed). The module must run in the dtype of ``x`` (float32 or float64).

    >>> TorchModel.__name__  # built from a torch module (needs torch)
    'TorchModel'
    """

    handle: Handle = eqx.field(static=True)

    def __init__(
        self,
        module,
        *,
        conditioning: dict[str, Any] | None = None,
        unconditional: dict[str, Any] | None = None,
        guidance_scale: float | None = None,
        max_saved_graphs: int = MAX_SAVED_GRAPHS,
    ):
        if guidance_scale is not None:
            guidance_scale = check_finite_float("guidance_scale", guidance_scale)
            if unconditional is None:
                raise ValueError(
                    f"guidance_scale={guidance_scale!r} needs `unconditional`, the inputs of the "
                    "unconditional evaluation (e.g. the null class label)"
                )
            if set(unconditional) != set(conditioning or {}):
                raise ValueError(
                    "`unconditional` must have the keys of `conditioning`, got "
                    f"{sorted(unconditional)} and {sorted(conditioning or {})}"
                )
        elif unconditional is not None:
            raise ValueError("`unconditional` is given without `guidance_scale`; pass both")
        if isinstance(max_saved_graphs, bool) or not isinstance(max_saved_graphs, int):
            raise ValueError(f"`max_saved_graphs` must be an int, got {max_saved_graphs=}")
        self.handle = Handle(
            module, conditioning, unconditional, guidance_scale, max(max_saved_graphs, 0)
        )

    @property
    def evaluations_per_call(self) -> int:
        """Model evaluations per call: 2 with guidance, else 1."""
        return 1 if self.handle.guidance_scale is None else 2

    @property
    def evaluations(self) -> int:
        """Model evaluations run so far (a guided call counts 2; recomputations none)."""
        return self.handle.evaluations

    @property
    def saved_graphs(self) -> int:
        """Forward graphs currently kept for a backward pass."""
        return len(self.handle.graphs)

    def _check(self, x: Array, t: Array) -> None:
        """Trace-time checks, and one probe call of the module per shape and dtype."""
        if x.ndim < 2 or not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(
                f"`x` must be a float array of shape (batch, *event), got shape {x.shape} and "
                f"dtype {x.dtype}"
            )
        if t.shape != (x.shape[0],):
            raise ValueError(f"`t` must have shape ({x.shape[0]},), got t.shape={t.shape}")
        handle = self.handle
        torch = import_torch()
        dtype = getattr(torch, np.dtype(x.dtype).name)
        if handle.dtype is not None and handle.dtype != dtype:
            raise ValueError(
                f"the torch module's parameters are {handle.dtype} but x has dtype {x.dtype}; "
                f"convert one of them (module.to({dtype}) or x.astype(...))"
            )
        key = (x.shape, np.dtype(x.dtype).name)
        if key in handle.checked:
            return
        with torch.no_grad():
            xt = torch.zeros(x.shape, dtype=dtype, device=handle.device)
            tt = torch.ones(x.shape[0], dtype=dtype, device=handle.device)
            out = handle.predict(xt, tt, x.shape[0])
        handle.evaluations -= self.evaluations_per_call  # the probe is not a sampler's call
        if tuple(out.shape) != tuple(x.shape) or out.dtype != dtype:
            raise ValueError(
                f"the torch model returned shape {tuple(out.shape)} and dtype {out.dtype} for x "
                f"of shape {tuple(x.shape)} and dtype {dtype}; it must return a prediction of "
                "x's shape and dtype (a model that also predicts a variance: return its first "
                "half of the channels)"
            )
        handle.checked.add(key)

    def __call__(self, x: Array, t: Array) -> Array:
        x = jnp.asarray(x)
        t = jnp.asarray(t, x.dtype)
        self._check(x, t)
        return bridge(self.handle, x, t)


class TorchDenoiser(AbstractDenoiser):
    """``D(y; s)`` of a torch model (see the module docstring for ``prediction`` and
    ``time_input``). ``table``: the ``alphas_cumprod`` table of a ``"timestep"`` model;
    ``time_scale``: the flow model's ``t = time_scale * sigma``; ``sigma_data``: EDM's.

    >>> TorchDenoiser.__name__  # built from a TorchModel (needs torch)
    'TorchDenoiser'
    """

    model: TorchModel
    table: Tabulated | None
    prediction: str = eqx.field(static=True)
    time_input: str = eqx.field(static=True)
    time_scale: float = eqx.field(static=True)
    sigma_data: float = eqx.field(static=True)

    def __init__(
        self,
        model: TorchModel,
        prediction: str = "eps",
        time_input: str = "timestep",
        *,
        table: Tabulated | None = None,
        time_scale: float = 1000.0,
        sigma_data: float = 0.5,
    ):
        if not isinstance(model, TorchModel):
            model = TorchModel(model)
        self.model = model
        self.prediction = prediction_name(prediction)
        self.time_input = check_choice("time_input", time_input, TIME_INPUTS)
        if (self.prediction == "flow") != (self.time_input == "flow"):
            raise ValueError(
                f"prediction={prediction!r} does not go with time_input={time_input!r}: a flow "
                "velocity is the prediction of flow models (time_input='flow'), and flow models "
                "here predict it"
            )
        if self.time_input == "edm" and self.prediction not in ("eps", "v"):
            raise ValueError(
                f"time_input='edm' needs prediction 'eps' or 'v' (the sign of c_out), got "
                f"prediction={prediction!r}"
            )
        if self.time_input == "timestep" and not isinstance(table, Tabulated):
            raise ValueError(
                "time_input='timestep' needs the model's `table` "
                f"(Tabulated.from_alphas_cumprod(...)), got table={table!r}"
            )
        self.table = table if self.time_input == "timestep" else None
        self.time_scale = check_positive_float("time_scale", time_scale)
        self.sigma_data = check_positive_float("sigma_data", sigma_data)

    @classmethod
    def from_scheduler(cls, module, scheduler, **options) -> TorchDenoiser:
        """The denoiser of ``module`` trained under a diffusers ``scheduler`` (an instance):
        flow-matching schedulers give ``time_input="flow"``, EDM schedulers ``"edm"``, the
        others their ``alphas_cumprod`` table; the prediction is ``prediction_type``.
        ``options`` go to :class:`TorchModel` (``conditioning``, ``guidance_scale``, ...);
        ``prediction=`` overrides the config's."""
        from .diffusers import scheduler_kind

        config = scheduler.config
        kind = scheduler_kind(scheduler)
        prediction = options.pop("prediction", None)
        model = TorchModel(module, **options)
        if kind == "flow":
            time_scale = float(config.get("num_train_timesteps", 1000))
            return cls(model, prediction or "flow", "flow", time_scale=time_scale)
        prediction = prediction or config.get("prediction_type", "epsilon")
        if kind == "ve":
            return cls(model, prediction, "edm", sigma_data=float(config.sigma_data))
        abar = np.asarray(scheduler.alphas_cumprod, dtype=np.float64)
        return cls(model, prediction, "timestep", table=Tabulated.from_alphas_cumprod(abar))

    @property
    def evaluations_per_call(self) -> int:
        """Model evaluations per call of the denoiser (2 with guidance)."""
        return self.model.evaluations_per_call

    @property
    def noise_range(self) -> tuple[float, float] | None:
        """``(s_min, s_max)`` of a ``"timestep"`` model's table; ``None`` for the others."""
        if self.table is None:
            return None
        from ..io.convert import table_range

        return table_range(self.table)

    def time(self, noise_level: Array) -> Array:
        """The model's time input at EDM noise levels ``noise_level`` (shape ``(batch,)``)."""
        s = noise_level
        if self.time_input == "timestep":
            return self.table.noise_level_to_timestep(s).astype(s.dtype)
        if self.time_input == "sigma":
            return s
        if self.time_input == "edm":
            return 0.25 * jnp.log(s)
        return self.time_scale * s / (1.0 + s)

    def __call__(self, y, noise_level):
        y = jnp.asarray(y)
        if self.time_input != "edm":
            prediction = "v" if self.prediction == "flow" else self.prediction
            process = _PROCESS[self.time_input]
            adapter = PredictionDenoiser(self.model, prediction, process, conditioning=self.time)
            return adapter(y, noise_level)
        from ..models.base import _broadcast_level
        from ..models.networks import edm_preconditioning

        s_batch = jnp.broadcast_to(jnp.asarray(noise_level, y.dtype), (y.shape[0],))
        c_skip, c_out, c_in, c_noise = (
            c.astype(y.dtype) for c in edm_preconditioning(s_batch, self.sigma_data)
        )
        sign = 1.0 if self.prediction == "eps" else -1.0
        out = self.model(_broadcast_level(c_in, y) * y, c_noise)
        return _broadcast_level(c_skip, y) * y + sign * _broadcast_level(c_out, y) * out


def model_evaluations(sampler, denoiser: AbstractDenoiser) -> int:
    """Model evaluations of one sample: the sampler's ``nfe`` (denoiser calls) times the
    denoiser's ``evaluations_per_call`` (2 with classifier-free guidance, else 1).

    >>> from schedopt.models import GaussianDenoiser
    >>> from schedopt.sampling import ODESampler
    >>> model_evaluations(ODESampler(5, "heun"), GaussianDenoiser(jnp.ones(2)))
    9
    """
    return int(sampler.nfe) * int(getattr(denoiser, "evaluations_per_call", 1))


def clear_saved_graphs(model: TorchModel | TorchDenoiser) -> None:
    """Drop the forward graphs a model keeps for backward passes (frees their memory)."""
    model = model.model if isinstance(model, TorchDenoiser) else model
    with model.handle.lock:
        model.handle.graphs.clear()


__all__ = [
    "DIFFUSERS_PREDICTIONS",
    "MAX_SAVED_GRAPHS",
    "PREDICTIONS",
    "TIME_INPUTS",
    "TorchDenoiser",
    "TorchModel",
    "clear_saved_graphs",
    "model_evaluations",
    "prediction_name",
]
