"""Sigmas for k-diffusion's samplers, fitted into a k-diffusion denoiser's noise range.

Every ``k_diffusion.sampling.sample_*`` that takes a sigma list (``sample_euler``,
``sample_euler_ancestral``, ``sample_heun``, ``sample_dpm_2``, ``sample_dpm_2_ancestral``,
``sample_lms``, ``sample_dpmpp_2s_ancestral``, ``sample_dpmpp_sde``, ``sample_dpmpp_2m``,
``sample_dpmpp_2m_sde``, ``sample_dpmpp_3m_sde``) takes ``N + 1`` strictly decreasing EDM
noise levels ending in 0, which is what a card's grid is. For a discrete model wrapped as
``DiscreteEpsDDPMDenoiser`` / ``CompVisDenoiser`` (``DiscreteSchedule`` subclasses with
``sigma_min`` / ``sigma_max``) the levels must lie in the table's range, or
``sigma_to_t`` clamps them silently: :func:`sigmas_for` fits them (rescale by default,
or clip, refused when it would repeat a level, on which ``sample_dpmpp_2m`` and
``sample_lms`` return NaN). A VE denoiser without a range gets the card's own levels.
(``sample_dpm_fast`` and ``sample_dpm_adaptive`` take ``sigma_min, sigma_max`` and space
their own steps: a learned schedule does not apply to them.)

Example (not run here: it needs torch and k-diffusion)::

    from k_diffusion.external import DiscreteEpsDDPMDenoiser
    from k_diffusion.sampling import sample_dpmpp_2m
    from schedopt.integrations.kdiffusion import sigmas_for
    model = DiscreteEpsDDPMDenoiser(unet, alphas_cumprod, quantize=False)
    sigmas = sigmas_for(model, "runs/a", num_steps=10)
    x = sample_dpmpp_2m(model, torch.randn(shape) * sigmas[0], sigmas)
"""

from __future__ import annotations

from ..io.export import as_card, kdiffusion_sigmas

#: The ``sample_*`` functions that take a sigma list, and their model calls for N steps.
SAMPLERS = {
    "sample_euler": "N",
    "sample_euler_ancestral": "N",
    "sample_heun": "2N - 1",
    "sample_dpm_2": "2N - 1",
    "sample_dpm_2_ancestral": "2N - 1",
    "sample_lms": "N",
    "sample_dpmpp_2s_ancestral": "2N - 1",
    "sample_dpmpp_sde": "2N - 1",
    "sample_dpmpp_2m": "N",
    "sample_dpmpp_2m_sde": "N",
    "sample_dpmpp_3m_sde": "N",
}


def model_calls(sampler: str, num_steps: int) -> int:
    """Model evaluations of ``sampler`` over ``num_steps`` steps (its last step is Euler's).

    >>> model_calls("sample_heun", 10), model_calls("sample_dpmpp_2m", 10)
    (19, 10)
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"`sampler` must be one of {', '.join(SAMPLERS)}; got sampler={sampler!r}")
    return 2 * num_steps - 1 if SAMPLERS[sampler] == "2N - 1" else num_steps


def sigmas_for(model, schedule, num_steps: int | None = None, *, endpoints=None, device=None):
    """A float32 tensor of ``N + 1`` sigmas for ``model``, fitted into its range if it has one.

    ``schedule``: a card, a path (run directory, card, sigma file), a schedopt schedule or
    a sigma list; ``model``: a k-diffusion denoiser (its ``sigma_min`` / ``sigma_max``
    define the range when present), or ``None`` for a VE model trained on the card's range.
    """
    import torch

    card = as_card(schedule, num_steps)
    target = None
    if model is not None and hasattr(model, "sigma_min") and hasattr(model, "sigma_max"):
        target = (float(model.sigma_min), float(model.sigma_max))
    values = kdiffusion_sigmas(card, num_steps, model=target, endpoints=endpoints)
    return torch.tensor(values, dtype=torch.float32, device=device)


__all__ = ["SAMPLERS", "model_calls", "sigmas_for"]
