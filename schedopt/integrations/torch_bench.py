"""The cost of the torch bridge: value and gradient with respect to the grid of a 5-NFE
DPM-Solver++(2M) sample on a diffusers ``UNet2DModel``, through schedopt
(:class:`~schedopt.integrations.torch.TorchDenoiser` in a jitted ``jax.value_and_grad``)
against the same computation written in torch alone (:func:`torch_dpmpp_2m`, one
``torch.autograd.grad``). ``schedopt bench --sections torch_bridge`` prints it.

The torch-alone side is the reference the tests compare the bridge with: the same
fractional timesteps (the DDPM table interpolated linearly in ``log s``), the same
prediction conversion and the same multistep update (first order on the first step,
second order after, then ``D`` at the last level), all differentiable in the levels.
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def torch_timestep(noise_level, log_sigmas):
    """Fractional timestep of ``noise_level`` (a torch scalar): ``log_sigmas`` (increasing
    in the timestep) interpolated linearly in ``log s``, clamped to the table."""
    import torch

    log_s = torch.log(noise_level).clamp(log_sigmas[0], log_sigmas[-1])
    high = torch.searchsorted(log_sigmas, log_s.detach().reshape(1)).clamp(1, len(log_sigmas) - 1)
    low = high - 1
    weight = (log_s - log_sigmas[low]) / (log_sigmas[high] - log_sigmas[low])
    return (low.to(log_s.dtype) + weight).reshape(())


def torch_denoiser(module, log_sigmas, prediction: str = "eps"):
    """``D(y; s)`` of a discrete VP torch model, in torch: ``x = y / sqrt(1 + s^2)`` at the
    fractional timestep of ``s`` in the table ``log_sigmas`` (``log s`` of each timestep,
    increasing); ``"eps"``: ``D = y - s eps``; ``"v"``: ``D = a x - s a v``."""
    import torch

    log_sigmas = torch.as_tensor(np.asarray(log_sigmas))

    def denoise(y, s):
        table = log_sigmas.to(y.dtype)
        alpha = torch.rsqrt(1.0 + s**2)
        t = torch_timestep(s, table).expand(y.shape[0])
        out = module(alpha * y, t)
        out = out.sample if hasattr(out, "sample") else out
        if prediction == "eps":
            return y - s * out
        return alpha * (alpha * y) - s * alpha * out

    return denoise


def torch_dpmpp_2m(denoise, levels, y0):
    """DPM-Solver++(2M) through ``levels`` (torch, ``s_0 > ... > s_{m-1} > 0``), then ``D``
    at the last level, as schedopt's ``"dpmpp-2m"`` on a grid ending with a step to 0."""
    import torch

    lam = -torch.log(levels)
    y, previous = y0, None
    for i in range(levels.shape[0] - 1):
        d = denoise(y, levels[i])
        h = lam[i + 1] - lam[i]
        if previous is None:
            combined = d
        else:
            r = (lam[i] - lam[i - 1]) / h
            combined = (1.0 + 0.5 / r) * d - 0.5 / r * previous
        y = levels[i + 1] / levels[i] * y - torch.expm1(-h) * combined
        previous = d
    return denoise(y, levels[-1])


def bridge_overhead(quick: bool = False, repeats: int = 7, threads: int | None = 1) -> dict:
    """Medians of value+gradient w.r.t. the 5 levels, bridge vs torch alone (interleaved
    runs after a compiling/warm-up run), their ratio, and whether they agree (float32: the
    value to 1e-4, the gradient to 5e-3 of its largest entry; the gradient at the last,
    smallest level carries ~1e-3 relative round-off on schedopt's side, from
    ``alpha = sqrt(sigmoid(logsnr))`` near ``alpha = 1``; in float64 the tests find the two
    equal to 1e-12)."""
    import jax
    import jax.numpy as jnp
    import torch
    from diffusers import DDPMScheduler

    from ..sampling import probability_flow
    from ..schedules import EDM, Tabulated, grid
    from .torch import TorchDenoiser
    from .torch_models import digits_unet

    if threads is not None:
        torch.set_num_threads(threads)
    if quick:
        module, batch = digits_unet((8, 16), attention=False, norm_num_groups=4), 16
    else:
        module, batch = digits_unet((32, 64), attention=True), 128
    abar = np.asarray(DDPMScheduler().alphas_cumprod, np.float64)
    table = Tabulated.from_alphas_cumprod(abar)
    denoiser = TorchDenoiser(module, "eps", table=table)
    s_min, s_max = float(np.exp(-0.5 * table.logsnrs[0])), float(np.exp(-0.5 * table.logsnrs[-1]))
    levels = np.asarray(grid(EDM(sigma_min=s_min, sigma_max=s_max), 5)[:-1], np.float32)
    rng = np.random.default_rng(0)
    y0 = (rng.normal(size=(batch, 1, 8, 8)) * np.sqrt(1 + levels[0] ** 2)).astype(np.float32)
    target = rng.normal(size=(batch, 1, 8, 8)).astype(np.float32)

    def loss(lv):
        out = probability_flow(denoiser, lv, jnp.asarray(y0), solver="dpmpp-2m")
        return jnp.mean((out - target) ** 2)

    bridged = jax.jit(jax.value_and_grad(loss))
    # the table's own float32 levels on both sides (jnp.interp and torch_timestep)
    denoise = torch_denoiser(module, -0.5 * np.asarray(table.logsnrs))
    y0_t, target_t = torch.from_numpy(y0), torch.from_numpy(target)

    def alone(lv):
        lv = torch.tensor(lv, requires_grad=True)
        value = torch.mean((torch_dpmpp_2m(denoise, lv, y0_t) - target_t) ** 2)
        (gradient,) = torch.autograd.grad(value, lv)
        return float(value.detach()), gradient.numpy()

    def run_bridged():
        value, gradient = jax.block_until_ready(bridged(jnp.asarray(levels)))
        return float(value), np.asarray(gradient)

    begin = time.perf_counter()
    v_b, g_b = run_bridged()
    compile_s = time.perf_counter() - begin
    v_t, g_t = alone(levels)
    times: dict[str, list[float]] = {"schedopt": [], "torch": []}
    for _ in range(repeats):
        for name, fn in (("schedopt", run_bridged), ("torch", lambda: alone(levels))):
            begin = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - begin)
    medians = {k: statistics.median(v) for k, v in times.items()}
    scale = float(np.max(np.abs(g_t)))
    size = sum(p.numel() for p in module.parameters())
    return {
        "model": f"diffusers UNet2DModel for 8x8 digits ({size} parameters, random weights), "
        "epsilon prediction, DDPM linear table",
        "solver": "dpmpp-2m",
        "nfe": 5,
        "batch": batch,
        "torch_threads": torch.get_num_threads(),
        "repeats": repeats,
        "schedopt_median_s": medians["schedopt"],
        "torch_median_s": medians["torch"],
        "ratio": medians["schedopt"] / medians["torch"],
        "schedopt_compile_s": max(compile_s - medians["schedopt"], 0.0),
        "runs_s": times,
        "value_rel_diff": abs(v_b - v_t) / abs(v_t),
        "grad_max_diff_over_max": float(np.max(np.abs(g_b - g_t))) / scale,
        "agree": bool(
            abs(v_b - v_t) <= 1e-4 * abs(v_t) and float(np.max(np.abs(g_b - g_t))) <= 5e-3 * scale
        ),
    }


__all__ = ["bridge_overhead", "torch_denoiser", "torch_dpmpp_2m", "torch_timestep"]
