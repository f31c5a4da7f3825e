"""Exporters and ``schedopt export``: contents against independent formulas, files whole."""

import json

import numpy as np
import pytest

from schedopt.cli import main
from schedopt.io.card import make_card, save_card
from schedopt.io.checkpoint import save_schedule
from schedopt.io.export import (
    FORMATS,
    comfyui_sigmas,
    default_output,
    diffusers_schedule,
    export,
    kdiffusion_sigmas,
    numpy_arrays,
)
from schedopt.schedules import EDM, MonotoneCubic


def karras_sigmas(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """k-diffusion's ``get_sigmas_karras`` (ramp over n points, then a 0), in NumPy."""
    ramp = np.linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return np.append((hi + ramp * (lo - hi)) ** rho, 0.0)


def sd_table_sigmas():
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    abar = np.cumprod(1.0 - betas)
    return np.sqrt((1 - abar) / abar)


@pytest.fixture
def card():
    return make_card(EDM(), num_steps=10, objective_value=0.5)


@pytest.mark.parametrize("n", [1, 4, 25])
def test_kdiffusion_sigmas_match_get_sigmas_karras(card, n):
    sigmas = kdiffusion_sigmas(card, n)
    assert len(sigmas) == n + 1 and sigmas[-1] == 0.0
    if n > 1:
        np.testing.assert_allclose(sigmas, karras_sigmas(n), rtol=2e-5)
    assert json.loads(comfyui_sigmas(card, n)) == sigmas


def test_default_num_steps_is_the_cards(card):
    assert len(kdiffusion_sigmas(card)) == 11


@pytest.mark.parametrize("endpoints", ["rescale", "clip"])
def test_diffusers_export_for_stable_diffusion(card, endpoints):
    out = diffusers_schedule(card, 12, model="scaled-linear", endpoints=endpoints)
    ts = np.asarray(out["timesteps"])
    assert ts.dtype.kind == "i" and len(ts) == 12
    assert np.all(np.diff(ts) < 0) and ts[0] == 999 and ts[-1] == 0
    np.testing.assert_allclose(out["timestep_sigmas"][:-1], sd_table_sigmas()[ts], rtol=1e-5)
    sigmas = np.asarray(out["sigmas"])
    assert sigmas[-1] == 0.0 and len(sigmas) == 13
    assert sigmas[0] == pytest.approx(sd_table_sigmas()[-1], rel=1e-5)
    assert sigmas[-2] == pytest.approx(sd_table_sigmas()[0], rel=1e-5)
    if endpoints == "rescale":  # all steps kept: strictly decreasing
        assert np.all(np.diff(sigmas) < 0)
    assert "EulerDiscreteScheduler" in out["notes"]["sigmas"]


def test_diffusers_export_without_model_and_for_flow():
    card = make_card(EDM(), num_steps=5, process="flow")
    out = diffusers_schedule(card)
    assert "timesteps" not in out and out["model"] is None
    s = np.asarray(out["sigmas"])
    np.testing.assert_allclose(out["flow_sigmas"], s / (1 + s))
    assert out["flow_sigmas"][0] == pytest.approx(80 / 81, rel=1e-6)


def test_numpy_arrays(card):
    arrays = numpy_arrays(card, 6, model="ddpm-linear")
    assert arrays["noise_levels"].shape == (7,)
    for name in ("t", "logsnr", "alpha", "sigma", "timesteps"):
        assert arrays[name].shape == (6,), name
    assert arrays["timesteps"].dtype == np.int64
    np.testing.assert_allclose(arrays["alpha"], 1.0)  # the card is for a VE model


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_writes_each_format(tmp_path, card, fmt):
    path = export(card, fmt, tmp_path / "out" / f"x-{fmt}", num_steps=3)
    assert path.exists()
    if fmt == "numpy":
        assert set(np.load(path)) == {"t", "logsnr", "noise_levels", "alpha", "sigma"}
    else:
        json.loads(path.read_text())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary leftovers


def test_bad_export_arguments_leave_no_file(tmp_path, card):
    with pytest.raises(ValueError, match="format='xml'"):
        export(card, "xml", tmp_path / "a")
    with pytest.raises(ValueError, match="model='sdxl'"):
        export(card, "diffusers", tmp_path / "b", model="sdxl")
    with pytest.raises(ValueError, match="endpoints='both'"):
        export(card, "numpy", tmp_path / "c", model="scaled-linear", endpoints="both")
    with pytest.raises(ValueError, match="num_steps=0"):
        export(card, "k-diffusion", tmp_path / "d", num_steps=0)
    assert list(tmp_path.iterdir()) == []


def test_cli_export_from_a_run_directory(tmp_path, capsys):
    schedule = MonotoneCubic.from_schedule(EDM(), num_knots=8)
    save_card(tmp_path / "schedule.json", make_card(schedule, num_steps=10))
    argv = ["export", str(tmp_path), "--format", "diffusers", "--nfe", "8"]
    assert main(argv + ["--model", "scaled-linear"]) == 0
    out_path = default_output(tmp_path, "diffusers", 8)
    assert out_path == tmp_path / "exports" / "diffusers-nfe8.json"
    data = json.loads(out_path.read_text())
    assert len(data["timesteps"]) == 8
    printed = capsys.readouterr().out
    assert "timesteps: 999," in printed and str(out_path) in printed


def test_cli_export_from_a_checkpoint(tmp_path):
    save_schedule(tmp_path / "ckpt", EDM(rho=5.0))
    target = tmp_path / "sigmas.json"
    argv = ["export", str(tmp_path / "ckpt"), "--format", "k-diffusion", "--nfe", "4"]
    assert main(argv + ["-o", str(target)]) == 0
    np.testing.assert_allclose(json.loads(target.read_text()), karras_sigmas(4, rho=5.0), rtol=2e-5)


def test_cli_export_errors_are_clean(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing"), "--format", "numpy"]) == 2
    assert "missing" in capsys.readouterr().err
    save_card(tmp_path / "schedule.json", make_card(EDM(), num_steps=3))
    assert main(["export", str(tmp_path), "--format", "numpy", "--nfe", "0"]) == 2
    assert "--nfe must be >= 1" in capsys.readouterr().err
