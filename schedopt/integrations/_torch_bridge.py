"""The host side of :class:`~schedopt.integrations.torch.TorchModel`: a torch module run
from JAX by ``jax.pure_callback`` and differentiated by ``torch.autograd`` in a
``jax.custom_vjp``.

Three callbacks: the value (no graph), the forward pass under ``grad`` (keeps its torch
graph, found again by a digest of its inputs) and the backward pass (reuses that graph, or
recomputes one when it was evicted or never kept). CPU arrays reach torch through DLPack
without a copy; arrays of vmapped calls (``vmap_method="broadcast_all"``) arrive with the
vmapped axes in front, which are folded into the model's batch.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import threading
import warnings
from typing import NamedTuple

import jax
import numpy as np
from jaxtyping import Array


def import_torch():
    import torch

    return torch


class Spec(NamedTuple):
    """What the host side knows of a call's (unbatched) state: batch size, event rank, dtype."""

    batch: int
    event_ndim: int
    dtype: str

    @classmethod
    def of(cls, x) -> Spec:
        return cls(int(x.shape[0]), x.ndim - 1, np.dtype(x.dtype).name)


class Handle:
    """The host side of a :class:`TorchModel`: the module, its conditioning and the graphs
    kept for backward passes. Hashed and compared by identity (a static pytree field)."""

    def __init__(self, module, conditioning, unconditional, guidance_scale, max_saved_graphs):
        torch = import_torch()
        if not callable(module):
            raise ValueError(f"`module` must be a callable torch module, got module={module!r}")
        self.module = module
        params = [p for p in getattr(module, "parameters", lambda: [])() if p.is_floating_point()]
        self.dtype = params[0].dtype if params else None
        self.device = params[0].device if params else torch.device("cpu")
        self.conditioning = dict(conditioning or {})
        self.unconditional = None if unconditional is None else dict(unconditional)
        self.guidance_scale = guidance_scale
        self.max_saved_graphs = max_saved_graphs
        self.graphs: collections.OrderedDict = collections.OrderedDict()
        self.lock = threading.Lock()
        self.evaluations = 0
        self.checked: set = set()
        if getattr(module, "training", False):
            warnings.warn(
                "the torch module is in training mode (dropout and batch statistics make D "
                "random); call module.eval() first",
                stacklevel=3,
            )

    # ---- the model call ----------------------------------------------------------------

    def _batched(self, name, value, n, repeats):
        torch = import_torch()
        if not torch.is_tensor(value):
            return value
        value = value.to(self.device)
        if value.ndim == 0 or value.shape[0] == n:
            return value
        if value.shape[0] == 1:
            return value.expand(n, *value.shape[1:])
        if value.shape[0] * repeats == n:
            return value.repeat(repeats, *([1] * (value.ndim - 1)))
        raise ValueError(
            f"conditioning {name!r} has leading size {value.shape[0]}; it must be 1 or the "
            f"batch size ({n // repeats})"
        )

    def predict(self, x, t, batch: int):
        """The (guided) prediction for torch tensors ``x (n, *event)``, ``t (n,)``."""
        n = x.shape[0]
        repeats = n // batch
        cond = {k: self._batched(k, v, n, repeats) for k, v in self.conditioning.items()}
        if self.guidance_scale is None:
            self.evaluations += 1
            return _output(self.module(x, t, **cond))
        uncond = {k: self._batched(k, v, n, repeats) for k, v in self.unconditional.items()}
        torch = import_torch()
        both = {}
        for k in cond:
            if torch.is_tensor(cond[k]):
                both[k] = torch.cat([uncond[k], cond[k]])
            else:
                both[k] = cond[k]
        self.evaluations += 2
        out = _output(self.module(torch.cat([x, x]), torch.cat([t, t]), **both))
        pred_u, pred_c = out[:n], out[n:]
        return pred_u + self.guidance_scale * (pred_c - pred_u)

    def tensors(self, x, t, spec: Spec, *, copy: bool):
        """Torch views of the callback's arrays, vmapped axes folded into the batch."""
        torch = import_torch()
        if np.dtype(x.dtype).name != spec.dtype:
            raise ValueError(
                f"{spec.dtype} values reached the torch callback as {x.dtype}: JAX converts a "
                "callback's arguments under the x64 setting of the thread that runs it, and "
                "`with jax.enable_x64(True)` holds on the calling thread only; enable x64 for "
                "the process with jax.config.update('jax_enable_x64', True)"
            )
        shape = tuple(x.shape)
        event = shape[len(shape) - spec.event_ndim :]
        xt = torch.from_dlpack(x).reshape(-1, *event).to(self.device)
        tt = torch.from_dlpack(t).reshape(-1).to(self.device)
        if copy and self.device.type == "cpu":
            xt, tt = xt.clone(), tt.clone()
        return xt, tt

    # ---- kept graphs -------------------------------------------------------------------

    def keep(self, key, entry) -> None:
        with self.lock:
            self.graphs[key] = entry
            self.graphs.move_to_end(key)
            while len(self.graphs) > self.max_saved_graphs:
                self.graphs.popitem(last=False)

    def find(self, key, x, t, *, remove: bool):
        """The kept ``(x, t, out)`` of these inputs (compared exactly), or ``None``."""
        torch = import_torch()
        with self.lock:
            entry = self.graphs.pop(key, None) if remove else self.graphs.get(key)
        if entry is None:
            return None
        xt, tt, _ = entry
        same = xt.shape == x.shape and torch.equal(xt.detach(), x) and torch.equal(tt.detach(), t)
        return entry if same else None


def _key(*arrays) -> tuple:
    """A digest of arrays' shapes, dtypes and bytes: graphs are found by their inputs, so a
    forward pass that JAX recomputes for its backward pass (rematerialization, as in
    diffrax's checkpointed loops) finds the graph of the first one."""
    digest = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.shape}{a.dtype}".encode())
        digest.update(a.data)
    return digest.digest()


def _output(out):
    """The prediction tensor of a model's output (a tensor, diffusers' ``.sample``, a tuple)."""
    torch = import_torch()
    if torch.is_tensor(out):
        return out
    if hasattr(out, "sample") and torch.is_tensor(out.sample):
        return out.sample
    if isinstance(out, (tuple, list)) and out and torch.is_tensor(out[0]):
        return out[0]
    raise ValueError(
        f"the torch model must return a tensor, a tuple starting with one or an object with a "
        f"`sample` tensor; it returned {type(out).__name__}"
    )


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _host_value(handle: Handle, spec: Spec, x, t):
    torch = import_torch()
    xt, tt = handle.tensors(x, t, spec, copy=False)
    with torch.no_grad():
        out = handle.predict(xt, tt, spec.batch)
    return _numpy(out).reshape(x.shape)


def _host_forward(handle: Handle, spec: Spec, x, t):
    torch = import_torch()
    xt, tt = handle.tensors(x, t, spec, copy=True)
    key = _key(x, t)
    entry = handle.find(key, xt, tt, remove=False)
    if entry is None:
        xt.requires_grad_(True)
        tt.requires_grad_(True)
        with torch.enable_grad():
            entry = (xt, tt, handle.predict(xt, tt, spec.batch))
        handle.keep(key, entry)
    return _numpy(entry[2]).reshape(x.shape)


def _host_backward(handle: Handle, spec: Spec, x, t, cotangent):
    torch = import_torch()
    xt, tt = handle.tensors(x, t, spec, copy=True)
    entry = handle.find(_key(x, t), xt, tt, remove=True)
    if entry is None:  # evicted or never kept: recompute (not a sampler's evaluation)
        xt.requires_grad_(True)
        tt.requires_grad_(True)
        with torch.enable_grad():
            entry = (xt, tt, handle.predict(xt, tt, spec.batch))
        handle.evaluations -= 1 if handle.guidance_scale is None else 2
    xt, tt, out = entry
    g = torch.from_dlpack(cotangent).reshape(out.shape).to(out.device, out.dtype)
    gx, gt = torch.autograd.grad(out, (xt, tt), g, allow_unused=True)
    if gt is None:
        warnings.warn(
            "the torch model's output does not depend differentiably on its time input t: "
            "schedule gradients through it are zero",
            stacklevel=2,
        )
        gt = torch.zeros_like(tt)
    gx = torch.zeros_like(xt) if gx is None else gx
    return _numpy(gx).reshape(x.shape), _numpy(gt).reshape(t.shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def bridge(handle: Handle, x: Array, t: Array) -> Array:
    shape = jax.ShapeDtypeStruct(x.shape, x.dtype)
    host = functools.partial(_host_value, handle, Spec.of(x))
    return jax.pure_callback(host, shape, x, t, vmap_method="broadcast_all")


def bridge_fwd(handle: Handle, x: Array, t: Array):
    shape = jax.ShapeDtypeStruct(x.shape, x.dtype)
    host = functools.partial(_host_forward, handle, Spec.of(x))
    return jax.pure_callback(host, shape, x, t, vmap_method="broadcast_all"), (x, t)


def bridge_bwd(handle: Handle, residuals, cotangent):
    x, t = residuals
    shapes = (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(t.shape, t.dtype))
    host = functools.partial(_host_backward, handle, Spec.of(x))
    return jax.pure_callback(host, shapes, x, t, cotangent, vmap_method="broadcast_all")


bridge.defvjp(bridge_fwd, bridge_bwd)
