"""The ComfyUI node package: loaded the way ComfyUI loads custom nodes (its folder's
``__init__.py`` under another name), its node class called directly with torch, and the
text export parsed the way core's ManualSigmas and KJNodes' CustomSigmas parse it."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import schedopt.integrations.comfyui as comfyui_package  # noqa: E402
from schedopt.io.card import make_card, save_card  # noqa: E402
from schedopt.io.export import export, kdiffusion_sigmas  # noqa: E402
from schedopt.schedules import EDM, LogSNRLinear  # noqa: E402


class EPS:  # ComfyUI's comfy.model_sampling prediction classes, by name
    pass


class CONST:
    pass


class ModelSamplingDiscrete(EPS):
    """What ComfyUI's SD1.5 model_sampling exposes: its table's ends."""

    sigma_min = torch.tensor(0.0291675)
    sigma_max = torch.tensor(14.614642)


class ModelSamplingDiscreteFlow(CONST):
    sigma_min = torch.tensor(0.001)
    sigma_max = torch.tensor(1.0)


class Model:  # ComfyUI's ModelPatcher.get_model_object
    def __init__(self, sampling):
        self.sampling = sampling

    def get_model_object(self, name):
        assert name == "model_sampling"
        return self.sampling


@pytest.fixture(scope="module")
def node_class():
    """The node as ComfyUI would load it: the folder's __init__.py as a module of its own name."""
    folder = Path(comfyui_package.__path__[0])
    spec = importlib.util.spec_from_file_location("schedopt_sigmas", folder / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["schedopt_sigmas"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop("schedopt_sigmas", None)
        sys.modules.pop("schedopt_sigmas.nodes", None)
    assert set(module.NODE_CLASS_MAPPINGS) == set(module.NODE_DISPLAY_NAME_MAPPINGS)
    return module.NODE_CLASS_MAPPINGS["SchedoptScheduleSigmas"]


@pytest.fixture
def run_dir(tmp_path):
    save_card(tmp_path / "schedule.json", make_card(EDM(), num_steps=8))
    return tmp_path


def test_node_declares_comfyui_inputs(node_class):
    inputs = node_class.INPUT_TYPES()
    assert set(inputs["required"]) == {"path", "steps", "endpoints"}
    assert inputs["optional"] == {"model": ("MODEL",)}
    assert node_class.RETURN_TYPES == ("SIGMAS",) and hasattr(node_class, node_class.FUNCTION)


@pytest.mark.parametrize("steps", [0, 3, 25])
def test_a_card_gives_sigmas_for_any_step_count(node_class, run_dir, steps):
    (sigmas,) = node_class().get_sigmas(str(run_dir), steps, "rescale")
    n = steps or 8
    assert sigmas.dtype == torch.float32 and sigmas.shape == (n + 1,) and sigmas[-1] == 0
    expected = kdiffusion_sigmas(make_card(EDM(), num_steps=8), n)
    np.testing.assert_allclose(sigmas.numpy(), expected, rtol=1e-6)


def test_with_a_model_the_levels_fit_its_range_or_become_flow_sigmas(node_class, run_dir):
    node = node_class()
    (sd,) = node.get_sigmas(
        str(run_dir / "schedule.json"), 10, "rescale", Model(ModelSamplingDiscrete())
    )
    assert float(sd[0]) == pytest.approx(14.614642, rel=1e-6)
    assert float(sd[-2]) == pytest.approx(0.0291675, rel=1e-5)
    assert torch.all(sd[1:] < sd[:-1])
    with pytest.raises(ValueError, match="lie above the model's range"):
        node.get_sigmas(str(run_dir), 10, "clip", Model(ModelSamplingDiscrete()))
    (flow,) = node.get_sigmas(str(run_dir), 10, "rescale", Model(ModelSamplingDiscreteFlow()))
    s = np.asarray(kdiffusion_sigmas(make_card(EDM(), num_steps=8), 10))
    np.testing.assert_allclose(flow.numpy(), s / (1 + s), rtol=1e-6)


def test_sigma_files_pass_through_or_are_interpolated(node_class, tmp_path):
    card = make_card(LogSNRLinear(sigma_min=5e-5, sigma_max=14.6), num_steps=6)
    text = export(card, "comfyui", tmp_path / "s.txt")
    as_json = export(card, "k-diffusion", tmp_path / "s.json")
    values = kdiffusion_sigmas(card)
    for path in (text, as_json):
        (own,) = node_class().get_sigmas(str(path), 0, "rescale")
        np.testing.assert_array_equal(own.numpy(), np.float32(values))
    (more,) = node_class().get_sigmas(str(text), 11, "rescale")  # every other: a midpoint
    mids = np.sqrt(np.asarray(values[:-2]) * np.asarray(values[1:-1]))
    assert more.shape == (12,)
    np.testing.assert_allclose(more.numpy()[1:10:2], mids, rtol=1e-5)
    np.testing.assert_allclose(more.numpy()[0:11:2], values[:-1], rtol=1e-5)
    (tmp_path / "bad.txt").write_text("14.6, 1.0")
    with pytest.raises(ValueError, match="bad.txt"):
        node_class().get_sigmas(str(tmp_path / "bad.txt"), 0, "rescale")


def test_text_export_parses_in_manual_sigmas_and_custom_sigmas(tmp_path):
    """ComfyUI core ManualSigmas (comfy_extras/nodes_custom_sampler.py) reads numbers with
    ``re.findall(r"[-+]?(?:\\d*\\.*\\d+)", text)``; KJNodes CustomSigmas (nodes/nodes.py) with
    ``text.split(", ")`` and ``float``. A JSON list with 5.0000017e-05 broke the first."""
    card = make_card(LogSNRLinear(sigma_min=5e-5, sigma_max=14.6), num_steps=6)
    text = export(card, "comfyui", tmp_path / "s.txt").read_text().strip()
    manual = torch.FloatTensor([float(i) for i in re.findall(r"[-+]?(?:\d*\.*\d+)", text)])
    custom = torch.tensor([float(s) for s in text.split(", ")])
    expected = torch.tensor(kdiffusion_sigmas(card), dtype=torch.float32)
    torch.testing.assert_close(manual, expected, rtol=0, atol=0)
    torch.testing.assert_close(custom.float(), expected, rtol=0, atol=0)
    old = json.dumps(kdiffusion_sigmas(card))  # the JSON array the issue pasted
    assert len(re.findall(r"[-+]?(?:\d*\.*\d+)", old)) != len(expected)


def test_bad_node_arguments_are_named(node_class, run_dir):
    with pytest.raises(ValueError, match="endpoints='both'"):
        node_class().get_sigmas(str(run_dir), 0, "both")
    with pytest.raises(ValueError, match="steps=-1"):
        node_class().get_sigmas(str(run_dir), -1, "rescale")
