"""Every k-diffusion ``sample_*`` that takes sigmas, on its unmodified sampling module, run
with schedopt's exports for a VE model and for a discrete VP model wrapped as
``DiscreteEpsDDPMDenoiser``: the model is called at the card's levels, as often as the
sampler's method needs, with a finite result; Euler against the closed form."""

import doctest
import importlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from schedopt.integrations.kdiffusion import SAMPLERS, model_calls, sigmas_for  # noqa: E402
from schedopt.integrations.testing import (  # noqa: E402
    Denoiser,
    GaussianData,
    VPModel,
    euler_reference,
)
from schedopt.io.card import make_card  # noqa: E402
from schedopt.io.export import kdiffusion_sigmas  # noqa: E402
from schedopt.schedules import EDM, MonotoneCubic  # noqa: E402

N = 6
DATA = GaussianData([0.3, -0.2, 0.1], [0.5, 0.05, 2.0])


def sd_alphas_cumprod():
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, 0)


@pytest.fixture(scope="module")
def card():
    return make_card(MonotoneCubic.from_schedule(EDM(), num_knots=8), num_steps=N)


def is_subsequence(wanted, seen, rtol=1e-5):
    it = iter(seen)
    return all(any(np.isclose(s, w, rtol=rtol, atol=0) for s in it) for w in wanted)


def run(k_diffusion, sampler, denoiser, recorder, sigmas):
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = x * sigmas[0]
    torch.manual_seed(0)  # the ancestral samplers' default noise
    out = getattr(k_diffusion.sampling, sampler)(denoiser, x, sigmas, disable=True)
    return x, out


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_ve_model(k_diffusion, card, sampler):
    sigmas = torch.tensor(kdiffusion_sigmas(card), dtype=torch.float64)
    model = Denoiser(DATA)
    x, out = run(k_diffusion, sampler, model, model, sigmas)
    assert torch.all(torch.isfinite(out))
    assert model.calls == model_calls(sampler, N)
    assert model.noise_levels[0] == pytest.approx(float(sigmas[0]), rel=1e-12)
    assert is_subsequence(sigmas[:-1].tolist(), model.noise_levels)
    if sampler == "sample_euler":
        torch.testing.assert_close(out, euler_reference(DATA, x, sigmas.tolist()))


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_discrete_vp_model(k_diffusion, card, sampler):
    abar = sd_alphas_cumprod()
    inner = VPModel(DATA, abar.numpy())
    denoiser = k_diffusion.external.DiscreteEpsDDPMDenoiser(inner, abar, quantize=False)
    sigmas = sigmas_for(denoiser, card).double()
    # fitted into the table's range: the first level is its top, the last its bottom
    assert float(sigmas[0]) == pytest.approx(float(denoiser.sigma_max), rel=1e-6)
    assert float(sigmas[-2]) == pytest.approx(float(denoiser.sigma_min), rel=1e-6)
    np.testing.assert_allclose(sigmas, kdiffusion_sigmas(card, model="scaled-linear"), rtol=1e-6)
    x, out = run(k_diffusion, sampler, denoiser, inner, sigmas)
    assert torch.all(torch.isfinite(out))
    assert inner.calls == model_calls(sampler, N)
    # the network, given the fractional timestep sigma_to_t, is at the exported levels
    assert is_subsequence(sigmas[:-1].tolist(), inner.noise_levels, rtol=1e-4)
    if sampler == "sample_euler":
        torch.testing.assert_close(
            out, euler_reference(DATA, x, sigmas.tolist()), rtol=1e-4, atol=1e-5
        )


def test_clipping_onto_the_tables_end_is_refused_not_nan(k_diffusion):
    card = make_card(EDM(), num_steps=10)
    abar = sd_alphas_cumprod()
    denoiser = k_diffusion.external.DiscreteEpsDDPMDenoiser(
        VPModel(DATA, abar.numpy()), abar, False
    )
    with pytest.raises(ValueError, match="lie above the model's range.*zero-length"):
        sigmas_for(denoiser, card, endpoints="clip")
    sigmas = sigmas_for(denoiser, card).double()  # rescaled: all 10 steps, distinct
    assert torch.all(sigmas[1:] < sigmas[:-1])
    for sampler in ("sample_dpmpp_2m", "sample_lms"):
        _, out = run(k_diffusion, sampler, denoiser, denoiser.inner_model, sigmas)
        assert torch.all(torch.isfinite(out)), sampler


def test_every_listed_sampler_exists_and_takes_sigmas(k_diffusion):
    import inspect

    names = {n for n in dir(k_diffusion.sampling) if n.startswith("sample_")}
    taking = {
        n
        for n in names
        if "sigmas" in inspect.signature(getattr(k_diffusion.sampling, n)).parameters
    }
    assert set(SAMPLERS) == taking
    assert names - taking == {"sample_dpm_fast", "sample_dpm_adaptive"}


def test_doctests():
    module = importlib.import_module("schedopt.integrations.kdiffusion")
    assert doctest.testmod(module).failed == 0
    with pytest.raises(ValueError, match="sampler='sample_ddim'"):
        model_calls("sample_ddim", 3)
