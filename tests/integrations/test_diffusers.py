"""apply_schedule against the real diffusers 0.42.1: every scheduler of the support table
runs a full loop on a closed-form Gaussian model at the card's levels and call count; the
table in docs/ and the README is what those runs produce."""

import doctest
import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

from schedopt.integrations import diffusers_support as support  # noqa: E402
from schedopt.integrations.diffusers import apply_schedule  # noqa: E402
from schedopt.io.card import make_card  # noqa: E402
from schedopt.io.export import kdiffusion_sigmas  # noqa: E402
from schedopt.schedules import EDM, LogSNRLinear  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
diffusers.utils.logging.set_verbosity_error()


@pytest.fixture(scope="module")
def rows():
    return support.support_rows()


def test_every_scheduler_of_the_table_runs_the_card_through_apply_schedule(rows):
    failed = [
        (config, name, cells["apply_schedule"].text)
        for config, name, cells in rows
        if not cells["apply_schedule"].ok
    ]
    assert failed == []
    by_name = {(c, n): cells for c, n, cells in rows}
    # the exports taken unchanged: Euler's sigmas=, and timesteps= on the six that take it
    assert by_name["SD1.5 VP", "EulerDiscreteScheduler"]["sigmas"].ok
    for name in support.ROWS[:7]:
        assert by_name[name]["timesteps"].ok, name
    # and the ones the issue found silently wrong are reported as such, not as working
    assert not by_name["EDM VE", "EDMEulerScheduler"]["sigmas"].ok
    assert "other levels" in by_name["SD3 flow", "FlowMatchEulerDiscreteScheduler"]["sigmas"].text
    assert "no sigmas=" in by_name["SD1.5 VP", "PNDMScheduler"]["sigmas"].text


def test_the_committed_tables_are_the_generated_one(rows):
    table = support.support_table(rows)
    docs = (ROOT / "docs" / "diffusers_support.md").read_text()
    assert docs == "# diffusers support\n\n" + table, (
        "stale: python -m schedopt.integrations.diffusers_support --write"
    )
    assert support.readme_block(table) in (ROOT / "README.md").read_text()


def _sd3():
    return support.make_scheduler("SD3 flow", "FlowMatchEulerDiscreteScheduler")


def test_a_flow_card_gives_flow_match_exactly_its_values_and_nfe():
    card = make_card(EDM(), num_steps=10, process="flow")
    s = np.asarray(kdiffusion_sigmas(card)[:-1])
    for shift in ("disable", "compensate"):
        scheduler = _sd3()
        applied = apply_schedule(scheduler, card, shift=shift)
        assert (applied.scheduler is scheduler) == (shift == "compensate")
        sigmas = applied.scheduler.sigmas.double().numpy()
        assert len(applied.scheduler.timesteps) == 10 and sigmas[-1] == 0.0
        np.testing.assert_allclose(sigmas[:-1], s / (1 + s), rtol=2e-6)
        assert applied.model_calls == 10
        result = support.run_and_check(applied.scheduler, s, 10)
        assert result.ok, result.text
    assert any("pre-compensated the scheduler's shift 3" in n for n in applied.notes)


def test_dynamic_shifting_is_compensated_with_mu_or_refused_without():
    card = make_card(EDM(), num_steps=5, process="flow")
    s = np.asarray(kdiffusion_sigmas(card)[:-1])
    scheduler = support.make_scheduler("Flux flow", "FlowMatchEulerDiscreteScheduler")
    with pytest.raises(ValueError, match="needs the `mu`"):
        apply_schedule(scheduler, card, shift="compensate")
    applied = apply_schedule(scheduler, card, shift="compensate", mu=1.15)
    assert applied.kwargs["mu"] == 1.15
    np.testing.assert_allclose(applied.scheduler.sigmas[:-1].double(), s / (1 + s), rtol=2e-6)
    with pytest.raises(ValueError, match="shift"):
        apply_schedule(scheduler, card, shift="keep")


@pytest.mark.parametrize(
    ("solver", "target", "calls"),
    [("dpmpp-2m", "DPMSolverMultistepScheduler", 8), ("heun", "HeunDiscreteScheduler", 15)],
)
def test_a_swap_follows_the_cards_solver(solver, target, calls):
    card = make_card(EDM(), num_steps=8, process="vp", solver=solver)
    pndm = support.make_scheduler("SD1.5 VP", "PNDMScheduler")
    applied = apply_schedule(pndm, card)
    assert type(applied.scheduler).__name__ == target and applied.model_calls == calls
    assert any(f"swapped for {target} (the card's solver {solver!r})" in n for n in applied.notes)
    if solver == "dpmpp-2m":
        cfg = applied.scheduler.config
        assert cfg.solver_order == 2 and cfg.algorithm_type == "dpmsolver++"
    assert applied.scheduler.config.beta_schedule == "scaled_linear"
    assert support.run_and_check(applied.scheduler, applied.noise_levels[:-1], calls).ok
    with pytest.raises(ValueError, match="PNDMScheduler takes no custom schedule.*swap=True"):
        apply_schedule(pndm, card, swap=False)


def test_options_that_replace_a_schedule_are_switched_off_in_a_copy():
    dpm = diffusers.DPMSolverMultistepScheduler.from_config(
        support.SD15, use_karras_sigmas=True, final_sigmas_type="sigma_min"
    )
    card = make_card(EDM(), num_steps=6, process="vp")
    applied = apply_schedule(dpm, card)
    assert applied.scheduler is not dpm and dpm.config.use_karras_sigmas
    assert not applied.scheduler.config.use_karras_sigmas
    assert applied.scheduler.sigmas[-1] == 0.0
    assert any(
        "use_karras_sigmas=False" in n and "final_sigmas_type='zero'" in n for n in applied.notes
    )
    assert support.run_and_check(applied.scheduler, applied.noise_levels[:-1], 6).ok


def test_vp_levels_fit_the_models_range_or_are_refused():
    card = make_card(EDM(), num_steps=10, process="vp")
    euler = support.make_scheduler("SD1.5 VP", "EulerDiscreteScheduler")
    applied = apply_schedule(euler, card)
    table = np.sqrt((1 - euler.alphas_cumprod.double()) / euler.alphas_cumprod.double()).numpy()
    assert applied.noise_levels[0] == pytest.approx(table[-1], rel=1e-6)
    assert applied.noise_levels[-2] == pytest.approx(table[0], rel=1e-6)
    with pytest.raises(ValueError, match=r"80, 42.4152, 21.1087 lie above the model's range"):
        apply_schedule(euler, card, endpoints="clip")
    with pytest.raises(ValueError, match="does not apply to flow"):
        apply_schedule(_sd3(), card, endpoints="clip")


def test_edm_scheduler_reads_the_ramp_back_as_the_cards_levels():
    card = make_card(LogSNRLinear(sigma_min=0.01, sigma_max=50.0), num_steps=7)
    for schedule in ("karras", "exponential"):
        edm = diffusers.EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_schedule=schedule)
        applied = apply_schedule(edm, card, endpoints="clip")  # inside [0.002, 80]: kept
        # the exponential schedule uses only len(sigmas): a karras copy takes the ramp
        assert (applied.scheduler is edm) == (schedule == "karras")
        np.testing.assert_allclose(
            applied.scheduler.sigmas.double().numpy(), kdiffusion_sigmas(card), rtol=2e-6, atol=0
        )
        assert support.run_and_check(applied.scheduler, applied.noise_levels[:-1], 7).ok
    assert any("sigma_schedule='karras'" in n for n in applied.notes)


class _Pipeline(diffusers.DiffusionPipeline):
    """A minimal pipeline with a real pipeline's schedule handling (diffusers' own
    ``retrieve_timesteps``) and the closed-form Gaussian model as its network."""

    def __init__(self, scheduler):
        super().__init__()
        self.register_modules(scheduler=scheduler)

    def __call__(self, num_inference_steps=50, timesteps=None, sigmas=None, model=None):
        # "Copied from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion.
        # retrieve_timesteps" (that module needs transformers, which is not installed)
        from diffusers.pipelines.kandinsky6.pipeline_kandinsky6_sr import retrieve_timesteps

        timesteps, _ = retrieve_timesteps(
            self.scheduler, num_inference_steps, None, timesteps, sigmas
        )
        latents = torch.randn(1, 3, generator=torch.Generator().manual_seed(0))
        latents = latents * self.scheduler.init_noise_sigma
        for t in timesteps:
            out = model(self.scheduler.scale_model_input(latents, t), t)
            latents = self.scheduler.step(out, t, latents).prev_sample
        return latents


def test_a_pipeline_gets_a_compatible_scheduler_and_the_call_arguments():
    from schedopt.integrations.testing import GaussianData, VPModel

    pipe = _Pipeline(support.make_scheduler("SD1.5 VP", "PNDMScheduler"))
    card = make_card(EDM(), num_steps=7, process="vp")
    with pytest.raises(ValueError, match="does not support custom sigmas"):
        pipe(sigmas=kdiffusion_sigmas(card, model="scaled-linear"))  # what the issue saw
    applied = apply_schedule(pipe, card)
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler" and "sigmas" in applied.kwargs
    model = VPModel(GaussianData([0.1, 0.2, 0.3], [1.0, 0.5, 0.1]), pipe.scheduler.alphas_cumprod)
    out = pipe(**applied.kwargs, model=model)
    assert torch.all(torch.isfinite(out)) and model.calls == applied.model_calls == 7
    np.testing.assert_allclose(model.noise_levels, applied.noise_levels[:-1], rtol=1e-4)


def test_bad_targets_and_schedules_are_named():
    with pytest.raises(ValueError, match="`target` must be a diffusers scheduler"):
        apply_schedule(object(), make_card(EDM(), num_steps=3))
    with pytest.raises(ValueError, match="`schedule` must be a card"):
        apply_schedule(_sd3(), {1, 2})


def test_doctests_and_signature():
    module = importlib.import_module("schedopt.integrations.diffusers")
    assert doctest.testmod(module).failed == 0
    assert list(inspect.signature(apply_schedule).parameters)[:3] == [
        "target",
        "schedule",
        "num_steps",
    ]
