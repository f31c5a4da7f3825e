"""Exporters and ``schedopt export``: contents against independent formulas, files whole."""

import doctest
import importlib
import json
import re

import numpy as np
import pytest

from schedopt.cli import main
from schedopt.io.card import make_card, save_card
from schedopt.io.checkpoint import save_schedule
from schedopt.io.export import (
    FORMATS,
    card_from_sigmas,
    comfyui_sigmas,
    default_output,
    diffusers_schedule,
    export,
    kdiffusion_sigmas,
    load_source,
    numpy_arrays,
)
from schedopt.schedules import EDM, LogSNRLinear, MonotoneCubic

SD_RANGE = (0.0291675, 14.614642)  # ComfyUI's KarrasScheduler defaults: SD's table ends


def karras_sigmas(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """k-diffusion's ``get_sigmas_karras`` (ramp over n points, then a 0), in NumPy."""
    ramp = np.linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return np.append((hi + ramp * (lo - hi)) ** rho, 0.0)


def sd_table_sigmas():
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    abar = np.cumprod(1.0 - betas)
    return np.sqrt((1 - abar) / abar)


def manual_sigmas_parse(text):
    """ComfyUI core ``ManualSigmas.execute`` (comfy_extras/nodes_custom_sampler.py): its regex."""
    return [float(i) for i in re.findall(r"[-+]?(?:\d*\.*\d+)", text)]


def kjnodes_custom_sigmas_parse(text):
    """KJNodes ``CustomSigmas.customsigmas`` (nodes/nodes.py): ``split(', ')`` then ``float``."""
    return [float(sigma) for sigma in text.split(", ")]


def rescaled(levels, source, target):
    """log s mapped affinely from ``source`` onto ``target``; 0 stays 0 (independent formula)."""
    s = np.asarray(levels, dtype=np.float64)
    out = np.zeros_like(s)
    f = np.log(s[s > 0] / source[0]) / np.log(source[1] / source[0])
    out[s > 0] = target[0] * (target[1] / target[0]) ** f
    return out


@pytest.fixture
def card():
    return make_card(EDM(), num_steps=10, objective_value=0.5)


@pytest.mark.parametrize("n", [1, 4, 25])
def test_kdiffusion_sigmas_match_get_sigmas_karras(card, n):
    sigmas = kdiffusion_sigmas(card, n)
    assert len(sigmas) == n + 1 and sigmas[-1] == 0.0
    if n > 1:
        np.testing.assert_allclose(sigmas, karras_sigmas(n), rtol=2e-5)


def test_default_num_steps_is_the_cards(card):
    assert len(kdiffusion_sigmas(card)) == 11


@pytest.mark.parametrize("model", ["scaled-linear", SD_RANGE])
def test_a_model_export_is_the_card_rescaled_onto_the_models_range(card, model):
    levels = np.asarray(kdiffusion_sigmas(card, 12))
    out = np.asarray(kdiffusion_sigmas(card, 12, model=model))
    target = SD_RANGE if isinstance(model, tuple) else (sd_table_sigmas()[0], sd_table_sigmas()[-1])
    np.testing.assert_allclose(out, rescaled(levels, (levels[-2], levels[0]), target), rtol=1e-5)
    assert np.all(np.diff(out) < 0) and out[0] == pytest.approx(target[1], rel=1e-6)


@pytest.mark.parametrize("model", ["scaled-linear", SD_RANGE])
def test_clipping_that_would_repeat_a_level_is_refused(card, model):
    # EDM's [0.002, 80] at 10 steps puts four levels above SD's 14.6 and two below 0.029:
    # clipped, k-diffusion's dpmpp_2m and lms returned NaN on the repeated levels.
    with pytest.raises(ValueError, match=r"80, 42.4152, 21.1087 lie above the model's range") as e:
        kdiffusion_sigmas(card, 10, model=model, endpoints="clip")
    assert "zero-length" in str(e.value) and "14.61" in str(e.value)
    inside = make_card(EDM(sigma_min=0.05, sigma_max=12.0), num_steps=6)
    np.testing.assert_array_equal(  # inside the range, clip keeps every level
        kdiffusion_sigmas(inside, 6, model=model, endpoints="clip"), kdiffusion_sigmas(inside, 6)
    )


@pytest.mark.parametrize("endpoints", ["rescale", "clip"])
def test_diffusers_sigmas_and_timesteps_are_one_grid(endpoints):
    card = make_card(EDM(sigma_min=0.03, sigma_max=14.0), num_steps=12)
    out = diffusers_schedule(card, 12, model="scaled-linear", endpoints=endpoints)
    ts = np.asarray(out["timesteps"])
    assert ts.dtype.kind == "i" and len(ts) == 12 and np.all(np.diff(ts) < 0)
    sigmas = np.asarray(out["sigmas"])
    assert len(sigmas) == 13 and sigmas[-1] == 0.0
    np.testing.assert_allclose(sigmas[:-1], sd_table_sigmas()[ts], rtol=1e-6)
    if endpoints == "rescale":
        assert ts[0] == 999 and ts[-1] == 0
    assert out["endpoints"] == endpoints and out["process"] == "vp"


def test_flow_export_has_n_flow_sigmas_without_the_final_zero():
    card = make_card(EDM(), num_steps=5, process="flow")
    out = diffusers_schedule(card)
    assert "timesteps" not in out and out["model"] is None
    s = np.asarray(out["sigmas"])
    assert len(out["flow_sigmas"]) == 5  # FlowMatch schedulers append the 0 themselves
    np.testing.assert_allclose(out["flow_sigmas"], s[:-1] / (1 + s[:-1]), rtol=1e-15)
    assert out["flow_sigmas"][0] == pytest.approx(80 / 81, rel=1e-6)


def test_numpy_arrays_describe_the_grid_of_the_model_exported_to(card):
    arrays = numpy_arrays(card, 6, model="scaled-linear")
    levels = arrays["noise_levels"]
    assert levels.shape == (7,) and levels[-1] == 0
    for name in ("t", "logsnr", "alpha", "sigma", "timesteps"):
        assert arrays[name].shape == (6,), name
    assert arrays["timesteps"].dtype == np.int64
    np.testing.assert_allclose(arrays["logsnr"], -2 * np.log(levels[:-1]), rtol=1e-12)
    np.testing.assert_allclose(arrays["alpha"] ** 2 + arrays["sigma"] ** 2, 1.0)  # VP
    np.testing.assert_allclose(arrays["sigma"] / arrays["alpha"], levels[:-1], rtol=1e-12)
    # t is the model's continuous time: the table's level at t (K - 1) is the noise level
    log_table = np.log(sd_table_sigmas())
    at_t = np.exp(np.interp(arrays["t"] * 999, np.arange(1000), log_table))
    np.testing.assert_allclose(at_t, levels[:-1], rtol=1e-5)
    np.testing.assert_allclose(
        arrays["timestep_noise_levels"][:-1], sd_table_sigmas()[arrays["timesteps"]], rtol=1e-6
    )
    own = numpy_arrays(card, 6)  # without a model: the card's own grid and process (VE)
    np.testing.assert_allclose(own["alpha"], 1.0)
    np.testing.assert_allclose(own["noise_levels"], kdiffusion_sigmas(card, 6))


@pytest.mark.parametrize("process", ["ve", "flow"])
def test_comfyui_text_parses_in_manual_sigmas_and_custom_sigmas(process):
    card = make_card(LogSNRLinear(sigma_min=5e-5, sigma_max=14.6), num_steps=7, process=process)
    text = comfyui_sigmas(card)
    assert "e" not in text.lower() and "\n" not in text and "[" not in text
    s = np.asarray(kdiffusion_sigmas(card))
    expected = s / (1 + s) if process == "flow" else s
    for parse in (manual_sigmas_parse, kjnodes_custom_sigmas_parse):
        np.testing.assert_allclose(parse(text), expected, rtol=1e-15)
    assert manual_sigmas_parse(text)[-2] == pytest.approx(
        5e-5 / (1 + 5e-5) if process == "flow" else 5e-5, rel=1e-6
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_writes_each_format(tmp_path, card, fmt):
    path = export(card, fmt, tmp_path / "out" / f"x-{fmt}", num_steps=3)
    assert path.exists()
    if fmt == "numpy":
        assert set(np.load(path)) == {"t", "logsnr", "noise_levels", "alpha", "sigma"}
    elif fmt == "comfyui":
        assert len(manual_sigmas_parse(path.read_text())) == 4
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
    with pytest.raises(ValueError, match="endpoints='clip' needs a model"):
        export(card, "k-diffusion", tmp_path / "e", endpoints="clip")
    with pytest.raises(ValueError, match="sigma_min"):
        export(card, "k-diffusion", tmp_path / "f", model=(5.0, 1.0))
    with pytest.raises(ValueError, match="num_steps <= 1000"):
        export(card, "diffusers", tmp_path / "g", num_steps=1001, model="scaled-linear")
    assert list(tmp_path.iterdir()) == []


def test_too_many_steps_for_the_schedules_float32_levels_are_refused(tmp_path):
    # 5000 steps over [1, 1.0001] are closer than float32's resolution at 1 (1.2e-7)
    card = make_card(LogSNRLinear(sigma_min=1.0, sigma_max=1.0001), num_steps=2)
    with pytest.raises(ValueError, match=r"num_steps=5000 is too many.*zero-length step") as e:
        kdiffusion_sigmas(card, 5000)
    assert "clip" not in str(e.value) and "range" not in str(e.value)
    assert len(kdiffusion_sigmas(card, 50)) == 51


def test_default_file_names_keep_every_setting_apart(tmp_path):
    names = {
        default_output(tmp_path, "diffusers", 20).name,
        default_output(tmp_path, "diffusers", 20, model="scaled-linear").name,
        default_output(tmp_path, "diffusers", 20, model="scaled-linear", endpoints="clip").name,
        default_output(tmp_path, "diffusers", 20, model="ddpm-linear").name,
        default_output(tmp_path, "diffusers", 20, model=(0.002, 80.0)).name,
        default_output(tmp_path, "diffusers", 20, process="flow").name,
    }
    assert len(names) == 6
    assert default_output(tmp_path, "k-diffusion", 20).name == "k-diffusion-steps20.json"
    assert default_output(tmp_path, "comfyui", 20).name == "comfyui-steps20.txt"
    assert default_output(tmp_path / "schedule.json", "numpy", 5).parent == tmp_path / "exports"


def test_sigma_files_are_sources_that_regrid_log_linearly(tmp_path):
    levels = [14.6, 6.0, 2.5, 0.9, 0.25, 0.03, 0.0]
    files = {
        "list.json": json.dumps(levels),
        "diffusers.json": json.dumps({"sigmas": levels}),
        "comfy.txt": ", ".join(map(str, levels)) + "\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        card = load_source(tmp_path / name)
        np.testing.assert_allclose(kdiffusion_sigmas(card), levels, rtol=1e-6)
        twice = np.asarray(kdiffusion_sigmas(card, 11))  # every other level: a midpoint
        mids = np.sqrt(np.asarray(levels[:-2]) * np.asarray(levels[1:-1]))
        np.testing.assert_allclose(twice[1:-1:2][: len(mids)], mids, rtol=1e-5)
    (tmp_path / "bad.txt").write_text("14.6, 1.0")
    with pytest.raises(ValueError, match="bad.txt.*final='zero'"):
        load_source(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="2 positive levels"):
        card_from_sigmas([3.0, 0.0])


def test_cli_export_from_a_run_directory(tmp_path, capsys):
    schedule = MonotoneCubic.from_schedule(EDM(), num_knots=8)
    save_card(tmp_path / "schedule.json", make_card(schedule, num_steps=10))
    argv = ["export", str(tmp_path), "--format", "diffusers", "--num-steps", "8"]
    assert main(argv + ["--model", "scaled-linear"]) == 0
    out_path = tmp_path / "exports" / "diffusers-steps8-scaled-linear-rescale.json"
    data = json.loads(out_path.read_text())
    assert len(data["timesteps"]) == 8
    printed = capsys.readouterr().out
    assert "timesteps: 999," in printed and str(out_path) in printed
    assert "rescaled log sigma from the card's range [0.002, 80] onto the model's" in printed
    assert main(argv + ["--model", "scaled-linear", "--endpoints", "clip"]) == 2
    err = capsys.readouterr().err
    assert "lie above the model's range [0.0291672, 14.6146]" in err and "zero-length" in err
    assert main(["export", str(tmp_path), "--format", "k-diffusion"]) == 0
    assert (tmp_path / "exports" / "k-diffusion-steps10.json").is_file()
    # sizes are bounded: 4,000,000 steps once wrote 1747 zero-length ones
    assert main(["export", str(tmp_path), "--format", "k-diffusion", "--num-steps", "4000000"]) == 2
    assert "argument --num-steps: must be an integer from 1 to 10000" in capsys.readouterr().err
    # --nfe: the deprecated spelling of --num-steps (the same number of steps, a warning)
    assert main(["export", str(tmp_path), "--format", "k-diffusion", "--nfe", "6"]) == 0
    captured = capsys.readouterr()
    assert "warning: --nfe is deprecated: write --num-steps" in captured.err
    assert len(json.loads((tmp_path / "exports" / "k-diffusion-steps6.json").read_text())) == 7


def test_cli_process_reexpresses_a_card_and_endpoints_need_a_model(tmp_path, capsys):
    save_card(tmp_path / "schedule.json", make_card(EDM(), num_steps=4, process="ve"))
    assert main(["export", str(tmp_path), "--format", "diffusers", "--process", "flow"]) == 0
    data = json.loads((tmp_path / "exports" / "diffusers-steps4-flow.json").read_text())
    s = np.asarray(data["sigmas"][:-1])
    np.testing.assert_allclose(data["flow_sigmas"], s / (1 + s))
    assert "process 'flow'" in capsys.readouterr().out
    assert main(["export", str(tmp_path), "--format", "numpy", "--endpoints", "clip"]) == 2
    assert "--endpoints clip needs --model" in capsys.readouterr().err


def test_cli_export_from_a_checkpoint(tmp_path):
    save_schedule(tmp_path / "ckpt", EDM(rho=5.0))
    target = tmp_path / "sigmas.json"
    argv = ["export", str(tmp_path / "ckpt"), "--format", "k-diffusion", "--num-steps", "4"]
    assert main(argv + ["-o", str(target)]) == 0
    np.testing.assert_allclose(json.loads(target.read_text()), karras_sigmas(4, rho=5.0), rtol=2e-5)


def test_cli_export_errors_are_clean(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing"), "--format", "numpy"]) == 2
    assert "missing" in capsys.readouterr().err
    save_card(tmp_path / "schedule.json", make_card(EDM(), num_steps=3))
    assert main(["export", str(tmp_path), "--format", "numpy", "--num-steps", "0"]) == 2
    assert "--num-steps: must be an integer from 1 to 10000, got '0'" in capsys.readouterr().err
    narrow = tmp_path / "narrow.json"
    save_card(narrow, make_card(LogSNRLinear(sigma_min=1.0, sigma_max=1.0001), num_steps=2))
    assert main(["export", str(narrow), "--format", "k-diffusion", "--num-steps", "5000"]) == 2
    err = capsys.readouterr().err
    assert "num_steps=5000 is too many" in err and "clip" not in err
    assert not (tmp_path / "exports").exists()


def test_cli_prints_long_lists_shortened(tmp_path, capsys):
    save_card(tmp_path / "schedule.json", make_card(EDM(), num_steps=3))
    assert main(["export", str(tmp_path), "--format", "comfyui", "--num-steps", "200"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("sigmas:")][0]
    assert "(201 values)" in line and len(line) < 300


@pytest.mark.parametrize("module", ["schedopt.io.export", "schedopt.io.convert"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0


def test_a_learned_range_is_kept_by_default(tmp_path, capsys):
    from schedopt.schedules import RangedSchedule, grid

    ranged = RangedSchedule.from_schedule(EDM(), (0.002, 160.0), (0.05, 10.0))
    save_card(tmp_path / "schedule.json", make_card(ranged, num_steps=4))
    assert (
        main(["export", str(tmp_path), "--format", "k-diffusion", "--model-range", "0.01,80"]) == 0
    )
    assert "clipped the card's levels" in capsys.readouterr().out
    sigmas = json.loads(
        (tmp_path / "exports" / "k-diffusion-steps4-range0.01-80.0-clip.json").read_text()
    )
    np.testing.assert_allclose(sigmas, np.asarray(grid(ranged, 4, "zero")), rtol=1e-6)
