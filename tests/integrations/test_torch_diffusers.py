"""schedopt's samplers on a bridged diffusers UNet2DModel against diffusers' own scheduler
loops on the same grid (float32); loading UNet directories, pipelines and factories; the
``--torch-model`` option of ``schedopt optimize``; the example's smoke run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from schedopt.cli import main as cli_main  # noqa: E402
from schedopt.integrations.torch import TorchDenoiser  # noqa: E402
from schedopt.integrations.torch_models import digits_unet, load_torch_denoiser  # noqa: E402
from schedopt.sampling import ODESampler  # noqa: E402
from schedopt.schedules import EDM, grid  # noqa: E402
from schedopt.search import schedule_from_sigmas  # noqa: E402

EXAMPLE = Path(__file__).parents[2] / "examples" / "torch_digits_schedule.py"
LEVELS = [float(s) for s in np.asarray(grid(EDM(sigma_min=0.02, sigma_max=120.0), 5))[:-1]]


def tiny_unet(seed=1):
    return digits_unet((8, 16), attention=False, norm_num_groups=4, seed=seed)


def diffusers_loop(scheduler, unet, levels, eps):
    """diffusers' denoising loop on ``levels`` (then 0), from ``x_T = eps``: the grid set with
    ``sigmas=`` (Euler) or by setting ``scheduler.sigmas`` and the timesteps diffusers' own
    ``_sigma_to_t`` gives for them (multistep schedulers)."""
    sigmas = np.asarray([*levels, 0.0], np.float32)
    if isinstance(scheduler, diffusers.EulerDiscreteScheduler):
        scheduler.set_timesteps(sigmas=sigmas.tolist())
    else:
        scheduler.set_timesteps(len(levels))
        abar = scheduler.alphas_cumprod.numpy()
        log_sigmas = np.log(((1 - abar) / abar) ** 0.5)
        scheduler.sigmas = torch.from_numpy(sigmas)
        scheduler.timesteps = torch.from_numpy(
            np.asarray([scheduler._sigma_to_t(np.asarray(s), log_sigmas) for s in levels])
        )
    alpha0 = 1.0 / np.sqrt(1.0 + levels[0] ** 2)
    # Euler's state is y = x / alpha, the multistep schedulers' is x
    euler = isinstance(scheduler, diffusers.EulerDiscreteScheduler)
    sample = torch.from_numpy(eps / alpha0 if euler else eps)
    with torch.no_grad():
        for t in scheduler.timesteps:
            out = unet(scheduler.scale_model_input(sample, t).float(), t).sample
            sample = scheduler.step(out, t, sample).prev_sample
    return sample.float().numpy()


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize(
    "solver, cls, options",
    [
        ("euler", "EulerDiscreteScheduler", {}),
        ("dpmpp-2m", "DPMSolverMultistepScheduler", dict(algorithm_type="dpmsolver++")),
        ("unipc", "UniPCMultistepScheduler", {}),
    ],
)
def test_sampler_on_the_bridge_equals_the_diffusers_loop(solver, cls, options, prediction):
    unet = tiny_unet()
    scheduler = getattr(diffusers, cls)(prediction_type=prediction, **options)
    eps = np.random.default_rng(0).normal(size=(8, 1, 8, 8)).astype(np.float32)
    reference = diffusers_loop(scheduler, unet, LEVELS, eps)
    denoiser = TorchDenoiser.from_scheduler(unet, scheduler)
    y0 = jnp.asarray(eps) * np.float32(np.sqrt(1.0 + LEVELS[0] ** 2))
    schedule = schedule_from_sigmas([*LEVELS, 0.0])
    out = jax.jit(lambda y: ODESampler(5, solver)(denoiser, schedule, y))(y0)
    assert out.dtype == jnp.float32
    scale = np.abs(reference).max()
    np.testing.assert_allclose(np.asarray(out), reference, rtol=0, atol=2e-5 * scale)


def _save(directory: Path, prediction="v_prediction", scheduler=True):
    tiny_unet().save_pretrained(directory)
    if scheduler:
        diffusers.DDPMScheduler(prediction_type=prediction).save_pretrained(directory)
    return directory


def test_load_a_unet_directory_with_its_scheduler(tmp_path):
    loaded = load_torch_denoiser(_save(tmp_path / "unet"))
    den = loaded.denoiser
    assert (den.prediction, den.time_input, loaded.event_shape) == ("v", "timestep", (1, 8, 8))
    abar = diffusers.DDPMScheduler().alphas_cumprod.double().numpy()
    expected = np.sqrt((1 - abar[[0, -1]]) / abar[[0, -1]])
    np.testing.assert_allclose(den.noise_range, expected, rtol=1e-6)
    assert loaded.description["schedule_from"].endswith("scheduler_config.json")
    y = jnp.ones((2, 1, 8, 8))
    np.testing.assert_allclose(
        den(y, 1.0),
        TorchDenoiser.from_scheduler(
            tiny_unet(), diffusers.DDPMScheduler(prediction_type="v_prediction")
        )(y, 1.0),
        atol=1e-6,
    )


def test_load_a_pipeline_directory_and_defaults(tmp_path):
    pipe = tmp_path / "pipe"
    _save(pipe / "unet", scheduler=False)
    diffusers.DDPMScheduler(prediction_type="sample").save_pretrained(pipe / "scheduler")
    assert load_torch_denoiser(pipe).denoiser.prediction == "x0"
    bare = load_torch_denoiser(_save(tmp_path / "bare", scheduler=False))
    assert bare.denoiser.prediction == "eps" and "defaults" in bare.description["schedule_from"]
    assert (
        load_torch_denoiser(tmp_path / "bare", prediction="v_prediction").denoiser.prediction == "v"
    )


FACTORY = """
import torch
from schedopt.integrations.torch import TorchDenoiser
from schedopt.integrations.torch_models import digits_unet

def module():
    return digits_unet((8, 16), attention=False, norm_num_groups=4)

def denoiser():
    return TorchDenoiser(module(), "eps", "sigma")

NOT_CALLABLE = 3
"""


def test_load_a_factory(tmp_path, monkeypatch):
    (tmp_path / "my_factories.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_torch_denoiser("my_factories:denoiser").denoiser.time_input == "sigma"
    made = load_torch_denoiser("my_factories:module", prediction="x0")
    assert (made.denoiser.prediction, made.denoiser.time_input) == ("x0", "timestep")
    with pytest.raises(ValueError, match="not callable"):
        load_torch_denoiser("my_factories:NOT_CALLABLE")
    with pytest.raises(ValueError, match="cannot import 'nope'"):
        load_torch_denoiser("my_factories:nope")
    with pytest.raises(ValueError, match="conflicts"):
        load_torch_denoiser("my_factories:denoiser", prediction="v")


def test_bad_model_paths_name_the_path(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    cases = [
        (tmp_path / "missing", "no such directory"),
        (tmp_path / "file.txt", "is a file"),
        (tmp_path / "empty", "config.json is missing"),
        (other, "_class_name='UNet2DConditionModel'"),
    ]
    for path, match in cases:
        with pytest.raises(ValueError, match=match):
            load_torch_denoiser(path)
    with pytest.raises(ValueError, match="prediction='noise'"):
        load_torch_denoiser(_save(tmp_path / "unet"), prediction="noise")


def test_from_scheduler_reads_flow_and_edm_schedulers():
    flow = TorchDenoiser.from_scheduler(tiny_unet(), diffusers.FlowMatchEulerDiscreteScheduler())
    assert (flow.prediction, flow.time_input, flow.time_scale) == ("flow", "flow", 1000.0)
    edm = TorchDenoiser.from_scheduler(
        tiny_unet(), diffusers.EDMEulerScheduler(sigma_data=0.7, prediction_type="v_prediction")
    )
    assert (edm.prediction, edm.time_input, edm.sigma_data) == ("v", "edm", 0.7)


def _optimize(tmp_path, *extra):
    argv = ["optimize", "--num-steps", "3", "--solver", "dpmpp-2m", "--iterations", "2"]
    argv += ["--batch-size", "8", "--num-data", "64", "--no-progress", "--out", str(tmp_path)]
    return cli_main([*argv, *extra])


@pytest.mark.slow
def test_cli_optimize_with_a_torch_model(tmp_path, capsys):
    model = _save(tmp_path / "unet", prediction="epsilon")
    ranges = ["--sigma-min", "0.02", "--sigma-max", "100"]
    assert (
        _optimize(tmp_path / "run", "--objective", "mmd", "--torch-model", str(model), *ranges) == 0
    )
    card = json.loads((tmp_path / "run" / "schedule.json").read_text())
    fingerprint = card["fingerprint"]
    assert fingerprint["torch_model"] == str(model) and fingerprint["prediction"] == "eps"
    assert fingerprint["model_evaluations"] == 3 and fingerprint["data"] == "digits"
    assert card["objective"]["event_shape"] == [1, 8, 8] and card["objective"]["init"] == "vp"
    assert card["process"] == "vp"  # the model's process, not the oracles' ve
    assert "mmd at 3 steps (dpmpp-2m)" in capsys.readouterr().out


def test_cli_torch_model_errors_name_the_option(tmp_path, capsys):
    model = _save(tmp_path / "unet", prediction="epsilon")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 3, 8, 8), np.float32))
    cases = [
        (["--torch-model", str(tmp_path / "nope")], "--torch-model"),
        # the model's own range is the default; a range beyond it is refused
        (["--torch-model", str(model), "--sigma-min", "0.002"], "--sigma-min 0.002 / --sigma-max"),
        (
            ["--torch-model", str(model), "--sigma-min", "0.02", "--torch-data", str(bad)],
            "has samples of shape (3, 8, 8), but the model takes (1, 8, 8)",
        ),
        (
            ["--torch-model", str(model), "--sigma-min", "0.02", "--torch-data", "x.csv"],
            "--torch-data",
        ),
    ]
    for extra, message in cases:
        assert _optimize(tmp_path / "run", "--objective", "mmd", *extra) == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_example_smoke_run(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "results.json").read_text())
    rows = result["evaluation"]["rows"]
    assert len(rows) == 7 and all(np.isfinite(r["fd"]["mean"]) for r in rows.values())
    assert result["evaluation"]["seeds"] == [1000, 1001]
    assert (tmp_path / "unet" / "scheduler_config.json").is_file()
