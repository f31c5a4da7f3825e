"""Shared test set-up: quiet, deterministic hypothesis profile for CI's 2 cores."""

import os

# The command line's persistent compilation cache stays off in tests (no writes to the
# user's cache directory); tests of the cache turn it on in a subprocess.
os.environ["SCHEDOPT_COMPILE_CACHE"] = "off"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "schedopt",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("schedopt")


@pytest.fixture(autouse=True, scope="module")
def _fresh_jax_caches():
    """Drop compiled programs after each test module: a long run otherwise accumulates
    thousands of them (see scripts/run_tests.py)."""
    yield
    jax.clear_caches()


@pytest.fixture(scope="session")
def two_mode_mixture():
    """A 1-D two-mode mixture: weights 0.3 / 0.7 at -1 / 1, variances 0.05 / 0.02."""
    from schedopt.data import GaussianMixture

    return GaussianMixture(
        jnp.array([0.3, 0.7]), jnp.array([[-1.0], [1.0]]), jnp.array([[[0.05]], [[0.02]]])
    )


@pytest.fixture(scope="session")
def k_diffusion():
    """k-diffusion's own, unmodified ``sampling``, ``external`` and ``utils`` modules.

    Its package ``__init__`` imports the image-training stack (torchvision, wandb, clip, ...),
    which the test extra does not install; the three files are loaded from the installed
    package under their real names, with a placeholder ``torchvision`` only if none is
    installed (``utils`` imports ``torchvision.transforms.functional`` at the top, and no
    function that the samplers call uses it). Installed by ``scripts/test.sh``.
    """
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "k-diffusion is not installed: run scripts/test.sh, which installs the test extra "
            "and `pip install --no-deps k-diffusion==0.1.1.post1`"
        )
    placeholder = {}
    if importlib.util.find_spec("torchvision") is None and "torchvision" not in sys.modules:
        torchvision = types.ModuleType("torchvision")
        transforms = types.ModuleType("torchvision.transforms")
        transforms.functional = types.ModuleType("torchvision.transforms.functional")
        torchvision.transforms = transforms
        placeholder = {
            "torchvision": torchvision,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": transforms.functional,
        }
    package = sys.modules.get("k_diffusion")
    if package is None:
        package = types.ModuleType("k_diffusion")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["k_diffusion"] = package
    modules = {}
    sys.modules.update(placeholder)
    try:
        for name in ("utils", "sampling", "external"):
            full = f"k_diffusion.{name}"
            if full not in sys.modules:
                location = f"{package.__path__[0]}/{name}.py"
                module_spec = importlib.util.spec_from_file_location(full, location)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[full] = module
                module_spec.loader.exec_module(module)
                setattr(package, name, module)
            modules[name] = sys.modules[full]
    finally:  # the placeholder must not outlive the import: diffusers probes for torchvision
        for name in placeholder:
            sys.modules.pop(name, None)
    return types.SimpleNamespace(**modules)
