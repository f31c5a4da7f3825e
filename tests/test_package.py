"""``schedopt``'s top-level names: each resolves to its subpackage's object, lazily."""

import importlib
import importlib.metadata
import inspect
import subprocess
import sys

import pytest

import schedopt

HEAVY = ("jax", "diffrax", "flax", "orbax", "optax", "sklearn", "matplotlib.pyplot", "torch")


@pytest.mark.parametrize("name", schedopt.__all__)
def test_every_public_name_resolves_to_its_subpackages_object(name):
    value = getattr(schedopt, name)
    source = importlib.import_module(f"schedopt.{schedopt._SOURCES[name]}")
    if name == "optimize":  # the subpackage itself, callable as its loop
        assert value is source and callable(value)
    else:
        assert value is getattr(source, name)
    assert name in dir(schedopt)


def test_the_list_is_what_the_readme_starts_with():
    assert {"EDM", "MonotoneCubic", "AbstractSchedule", "optimize", "GaussianKL"} <= set(
        schedopt.__all__
    )
    assert {"TrajectoryMatching", "Spectrum", "make_sampler", "save_card", "load_card"} <= set(
        schedopt.__all__
    )
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        schedopt.nothing  # noqa: B018


def test_version_is_the_package_metadatas():
    assert schedopt.__version__ == importlib.metadata.version("schedopt")


def test_import_schedopt_imports_no_heavy_module():
    code = (
        "import sys, schedopt; schedopt.__version__; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_optimize_is_the_loop_whichever_is_imported_first():
    code = (
        "import schedopt.optimize.loop as loop, schedopt; from schedopt import optimize; "
        "print(optimize is schedopt.optimize, optimize.optimize is loop.optimize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True True"
    from schedopt.optimize import optimize

    assert inspect.signature(schedopt.optimize) == inspect.signature(optimize)
