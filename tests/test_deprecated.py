"""Renamed public names: each old name warns and is the object of its new name; no public
name of the package is defined twice for two different things."""

import importlib

import pytest

#: (package, old name, the object it now is: "package.name")
RENAMED = [
    ("schedopt.data", "grid", "schedopt.data.grid_mixture"),
    ("schedopt.constant_rate", "Frechet", "schedopt.constant_rate.SampleFrechet"),
    ("schedopt.gaussian", "Ancestral", "schedopt.gaussian.GaussianAncestral"),
    ("schedopt.gaussian", "EulerMaruyama", "schedopt.gaussian.GaussianEulerMaruyama"),
    ("schedopt.sampling", "ancestral_split", "schedopt.gaussian.ancestral_split"),
    ("schedopt.metrics", "gaussian_kl", "schedopt.metrics.kl_divergence_gaussians"),
    ("schedopt.metrics", "format_table", "schedopt.metrics.format_metrics"),
]

#: Subpackages whose ``__all__`` together make the public API.
PACKAGES = (
    "schedopt.schedules",
    "schedopt.gaussian",
    "schedopt.models",
    "schedopt.sampling",
    "schedopt.objectives",
    "schedopt.metrics",
    "schedopt.data",
    "schedopt.constant_rate",
    "schedopt.score_optimal",
    "schedopt.search",
    "schedopt.io",
)


def _resolve(path):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("package, old, new", RENAMED)
def test_old_name_warns_and_is_the_new_object(package, old, new):
    module = importlib.import_module(package)
    assert old not in module.__all__
    with pytest.warns(DeprecationWarning, match=f"{package}.{old} is deprecated: use {new}"):
        value = getattr(module, old)
    assert value is _resolve(new)


def test_unknown_names_are_still_attribute_errors():
    import schedopt.gaussian

    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        schedopt.gaussian.nothing  # noqa: B018


def test_no_public_name_means_two_things():
    owners = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if not callable(value) or name.isupper():
                continue
            owners.setdefault(name, set()).add(id(value))
    twice = sorted(name for name, ids in owners.items() if len(ids) > 1)
    assert twice == []
