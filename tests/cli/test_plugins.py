"""Objective plug-ins from outside the package: ``--objective module`` (or
``package.module:attribute``) and the ``schedopt.objectives`` entry-point group, with
``tests/cli/energy_plugin.py`` (the README's "Write your own objective" example)."""

import re
import sys
import types
from pathlib import Path

import pytest

from schedopt.cli import build_parser, main
from schedopt.cli._objectives import ENTRY_POINT_GROUP, check_plugin, entry_points, load_plugin
from schedopt.cli.optimize import OBJECTIVES, plugin_of, shaping_options
from schedopt.io.card import load_card

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture
def on_path(monkeypatch):
    """``tests/cli`` on the Python path, so that ``energy_plugin`` imports."""
    monkeypatch.syspath_prepend(str(HERE))


def parse(argv):
    args = build_parser("optimize", argv).parse_args(argv)
    args.given = frozenset()
    return args


def test_a_plugin_module_runs_through_the_command_line_and_its_card(on_path, tmp_path, capsys):
    argv = ["optimize", "--objective", "energy_plugin", "--energy-batch", "16", "--num-steps", "2"]
    argv += ["--iterations", "3", "--num-knots", "4", "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    card = load_card(tmp_path)
    assert card["objective"]["objective"] == "energy"
    assert card["objective"]["distance"] == {"distance": "energy"}
    assert card["objective"]["batch_size"] == 16
    assert card["fingerprint"] == {"dataset": "ring", "seed": 0}
    settings = card["settings"]
    assert settings["objective"] == "energy_plugin" and settings["energy_batch"] == 16
    others = {d for m in OBJECTIVES.values() for d in m.OPTIONS}  # no built-in plug-in's
    assert not others & set(settings), others & set(settings)
    assert "energy at 2 steps" in capsys.readouterr().out


def test_only_the_chosen_objectives_options_are_recorded():
    recorded = shaping_options(parse(["optimize", "--objective", "mmd"]))
    assert {"dataset", "batch_size", "num_data", "init"} <= set(recorded)
    for other in ("spectrum", "eigenvalues", "direction", "reference_steps", "num_pairs"):
        assert other not in recorded
    recorded = shaping_options(parse(["optimize"]))  # gaussian-kl
    assert {"spectrum", "eigenvalues", "init", "direction"} <= set(recorded)
    assert not {"dataset", "batch_size", "measure", "cost"} & set(recorded)


def test_module_and_attribute_forms(on_path, monkeypatch):
    import energy_plugin

    package = types.ModuleType("energy_package")
    package.plugin = energy_plugin
    monkeypatch.setitem(sys.modules, "energy_package", package)
    assert load_plugin("energy_plugin", OBJECTIVES) is energy_plugin
    assert load_plugin("energy_package:plugin", OBJECTIVES) is energy_plugin
    args = parse(["optimize", "--objective=energy_package:plugin", "--energy-batch", "8"])
    assert args.objective == "energy_package:plugin" and args.energy_batch == 8


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mmdd", "'mmdd' is not an objective: choose one of constant-rate, frechet"),
        ("no_such.module", "'no_such.module': no module named 'no_such' on the Python path"),
        ("json", "'json' is not an objective plug-in: it lacks NAME, HELP, OPTIONS"),
        ("json:nothing", "'json:nothing': module 'json' has no attribute 'nothing'"),
        ("json:", "'json:' must be package.module or package.module:attribute"),
    ],
)
def test_bad_objectives_name_the_option_and_the_value(value, message, tmp_path, capsys):
    assert main(["optimize", "--objective", value, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "argument --objective: " + message in err, err
    assert not (tmp_path / "x").exists()


def test_a_plugin_that_breaks_the_contract_is_refused(on_path, monkeypatch, capsys):
    broken = types.ModuleType("broken_plugin")
    broken.__dict__.update(NAME="broken", HELP="h", build=lambda args: None)
    broken.OPTIONS = ("not_an_option",)
    broken.add_arguments = lambda group: group.add_argument("--broken-size", type=int)
    monkeypatch.setitem(sys.modules, "broken_plugin", broken)
    assert main(["optimize", "--objective", "broken_plugin"]) == 2
    err = capsys.readouterr().err
    assert "'broken_plugin': its OPTIONS name 'not_an_option', which no option defines" in err
    broken.add_arguments = lambda group: group.add_argument("--seed", type=int)
    assert main(["optimize", "--objective", "broken_plugin"]) == 2
    assert "its add_arguments failed: argument --seed: conflicting" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"x: its OPTIONS must be a tuple .* got OPTIONS='a'"):
        check_plugin(types.SimpleNamespace(**{**vars(broken), "OPTIONS": "a"}), "x")


def test_a_built_in_plugins_option_is_refused_with_a_plugin_module(on_path, tmp_path, capsys):
    argv = ["optimize", "--objective", "energy_plugin", "--dataset", "grid"]
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--dataset applies to --objective frechet or mmd or sliced-w2 or trajectory" in err
    assert "not energy_plugin" in err
    assert main(["optimize", "--energy-batch", "4"]) == 2  # not loaded: not an option
    assert "unrecognized arguments: --energy-batch" in capsys.readouterr().err


def test_an_entry_point_plugin(on_path, tmp_path, monkeypatch):
    info = tmp_path / "energy_objectives-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: energy-objectives\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nenergy = energy_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert entry_points()["energy"].value == "energy_plugin"
    import energy_plugin

    assert load_plugin("energy", OBJECTIVES) is energy_plugin
    args = parse(["optimize", "--objective", "energy", "--energy-batch", "8"])
    assert args.objective == "energy" and args.energy_batch == 8
    assert set(shaping_options(args)) >= {"objective", "energy_batch"}
    help_text = build_parser("optimize").subcommands["optimize"].format_help()
    assert "energy: plug-in energy_plugin" in " ".join(help_text.split())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nenergy = no_such_mod\n")
    with pytest.raises(ValueError, match="entry point 'no_such_mod' .* could not be loaded"):
        load_plugin("energy", OBJECTIVES)


def test_the_readme_example_is_this_plugin():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Write your own objective") :]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    assert block == (HERE / "energy_plugin.py").read_text()


def test_a_plugin_not_loaded_from_the_command_line_is_named():
    args = parse(["optimize"])
    args.objective = "energy_plugin"  # e.g. taken from a checkpoint on --resume
    with pytest.raises(ValueError, match="'energy_plugin' was not loaded .* give --objective"):
        plugin_of(args)
