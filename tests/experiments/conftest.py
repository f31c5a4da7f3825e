import contextlib
import importlib.util
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).parents[2] / "experiments"


@contextlib.contextmanager
def _experiment_module(name: str):
    """The script ``experiments/<name>.py`` as a module, with ``experiments/`` on the path
    while it is used (the scripts import their helpers from ``nfe_sweep``)."""
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(EXPERIMENTS))


@pytest.fixture(scope="session")
def experiment_module():
    """``with experiment_module("range_fits") as module: ...``"""
    return _experiment_module
