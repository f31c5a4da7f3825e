"""The docstring examples of every module of the package (``--doctest-modules`` over
``schedopt/``, one test per module, with this suite's set-up: no compilation cache).

A module that needs an optional package that is not installed (torch and the reference
packages of the ``test`` extra) is skipped, naming it.
"""

import doctest
import importlib
import io
import pkgutil

import pytest

import schedopt

#: What a module may need that the base install lacks (the ``test`` extra).
OPTIONAL = ("torch", "diffusers", "torchsde", "torchdiffeq", "scipy", "safetensors")


def _modules() -> list[str]:
    found = pkgutil.walk_packages(schedopt.__path__, f"{schedopt.__name__}.")
    names = [m.name for m in found if not m.name.endswith(".__main__")]  # that one runs the CLI
    return ["schedopt", *sorted(names)]


@pytest.mark.parametrize("name", _modules())
def test_doctests(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs {e.name}, which is not installed")
        raise
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    report = io.StringIO()
    for test in finder.find(module, name):
        runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()
