"""Flax NNX denoisers: EDM preconditioning, shapes, the equinox adapter, save/load."""

from __future__ import annotations

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from schedopt.models.networks import (
    MLPDenoiser,
    UNetDenoiser,
    build_network,
    default_network_config,
    edm_preconditioning,
)
from schedopt.models.nnx_adapter import (
    NNXDenoiser,
    load_denoiser,
    load_network,
    read_network_metadata,
    save_network,
)


@nnx.jit
def _apply(model, y, s):
    return model(y, s)


@nnx.jit
def _raw(model, x, c_noise):
    return model.network(x, c_noise)


def _mlp():
    return MLPDenoiser(3, width=16, depth=2, embed_dim=8, sigma_data=0.7, rngs=nnx.Rngs(0))


def _unet():
    return UNetDenoiser((8, 8, 1), channels=(8, 16), num_blocks=1, embed_dim=8, rngs=nnx.Rngs(0))


def _perturb(model, seed=1):
    """Random non-zero weights everywhere (zero-initialized output layers included)."""
    graphdef, state = nnx.split(model)
    leaves, tree = jax.tree.flatten(state)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    leaves = [x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    return nnx.merge(graphdef, jax.tree.unflatten(tree, leaves))


@pytest.mark.parametrize("s", [0.01, 0.5, 3.0, 80.0])
@pytest.mark.parametrize("sigma_data", [0.5, 1.3])
def test_preconditioning_gives_unit_variance_targets(s, sigma_data):
    """For Var(x0) = sd^2: Var(c_in y) = 1 and the target (x0 - c_skip y) / c_out has variance 1."""
    c_skip, c_out, c_in, c_noise = (float(v) for v in edm_preconditioning(s, sigma_data))
    var_y = sigma_data**2 + s**2
    assert c_in**2 * var_y == pytest.approx(1.0, rel=1e-5)
    # Var(x0 - c_skip (x0 + s eps)) = (1 - c_skip)^2 sd^2 + c_skip^2 s^2
    var_target = ((1 - c_skip) ** 2 * sigma_data**2 + c_skip**2 * s**2) / c_out**2
    assert var_target == pytest.approx(1.0, rel=1e-5)
    assert c_noise == pytest.approx(np.log(s) / 4, rel=1e-6)


@pytest.mark.parametrize("make", [_mlp, _unet])
def test_untrained_network_is_c_skip_times_y(make):
    model = make()
    y = jax.random.normal(jax.random.key(0), (4, *model.event_shape))
    s = jnp.array([0.1, 1.0, 5.0, 50.0])
    c_skip = edm_preconditioning(s, model.sigma_data)[0]
    expected = c_skip.reshape((-1,) + (1,) * len(model.event_shape)) * y
    np.testing.assert_allclose(_apply(model, y, s), expected, rtol=1e-6)


@pytest.mark.parametrize("make", [_mlp, pytest.param(_unet, marks=pytest.mark.slow)])
def test_scalar_and_batch_noise_levels_agree_and_noise_conditions(make):
    model = _perturb(make())
    y = jax.random.normal(jax.random.key(0), (4, *model.event_shape))
    out = _apply(model, y, 0.7)
    assert out.shape == y.shape and np.all(np.isfinite(out))
    np.testing.assert_allclose(out, _apply(model, y, jnp.full((4,), 0.7)), rtol=1e-6)
    # the raw network sees the noise level: F differs between two levels at the same input
    c_noise = edm_preconditioning(jnp.array([0.3, 0.3, 3.0, 3.0]), model.sigma_data)[3]
    f = _raw(model, jnp.ones((4, *model.event_shape)), c_noise)
    np.testing.assert_allclose(f[0], f[1], rtol=1e-6)
    assert not np.allclose(f[1], f[2], atol=1e-4)


def test_wrong_input_shape_raises():
    with pytest.raises(ValueError, match=r"y.shape=\(2, 4\)"):
        _mlp()(jnp.zeros((2, 4)), 1.0)


@pytest.mark.slow
def test_unet_three_levels_and_bad_shapes():
    model = UNetDenoiser((8, 8, 2), channels=(4, 8, 8), embed_dim=4, rngs=nnx.Rngs(0))
    assert _apply(model, jnp.zeros((2, 8, 8, 2)), 1.0).shape == (2, 8, 8, 2)
    with pytest.raises(ValueError, match="divisible by 16"):
        UNetDenoiser((8, 8, 1), channels=(4, 4, 4, 4, 4), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="image_shape"):
        UNetDenoiser((8, 8), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="width=0"):
        MLPDenoiser(2, width=0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="sigma_data"):
        MLPDenoiser(2, sigma_data=-1.0, rngs=nnx.Rngs(0))


def test_adapter_is_a_jittable_differentiable_denoiser():
    model = _perturb(_mlp())
    den = NNXDenoiser.from_module(model)
    y = jax.random.normal(jax.random.key(2), (5, 3))
    direct = _apply(model, y, 0.4)
    np.testing.assert_allclose(jax.jit(lambda d, y: d(y, 0.4))(den, y), direct, rtol=1e-6)
    score = jax.jit(lambda d, y: d.score(y, 0.4))(den, y)
    np.testing.assert_allclose(score, (direct - y) / 0.16, rtol=1e-5)
    # gradients with respect to the input and the noise level flow
    total = jax.jit(lambda s: jnp.sum(den(y, s)))
    g = jax.jit(jax.grad(lambda s: jnp.sum(den(y, s))))(0.4)
    h = 1e-3
    fd = (total(0.4 + h) - total(0.4 - h)) / (2 * h)
    assert float(g) == pytest.approx(float(fd), rel=2e-2, abs=1e-3)
    assert isinstance(den.to_module(), MLPDenoiser)


def test_build_network_round_trip_and_errors():
    for model in (_mlp(), nnx.eval_shape(_unet)):
        config = model.config()
        rebuilt = nnx.eval_shape(lambda config=config: build_network(config))
        assert rebuilt.config() == model.config()
        leaves_a = jax.tree.leaves(nnx.state(rebuilt))
        leaves_b = jax.tree.leaves(nnx.state(model))
        assert [x.shape for x in leaves_a] == [x.shape for x in leaves_b]
    with pytest.raises(ValueError, match="architecture"):
        build_network({"architecture": "transformer"})
    with pytest.raises(ValueError, match="bad network config"):
        build_network({"architecture": "mlp", "dim": 2, "depthh": 3})
    assert default_network_config((8, 8, 1))["architecture"] == "unet"
    assert default_network_config((64,), 0.3) == {
        "architecture": "mlp",
        "dim": 64,
        "sigma_data": 0.3,
    }
    with pytest.raises(ValueError, match="event_shape"):
        default_network_config((2, 3))


def test_save_and_load_network(tmp_path):
    model = _perturb(_mlp())
    path = save_network(tmp_path / "net", model, metadata={"dataset": "ring"})
    assert read_network_metadata(path) == {"network": model.config(), "dataset": "ring"}
    y = jax.random.normal(jax.random.key(0), (4, 3))
    np.testing.assert_array_equal(_apply(load_network(path), y, 0.3), _apply(model, y, 0.3))
    den = load_denoiser(path)
    np.testing.assert_allclose(jax.jit(lambda d: d(y, 0.3))(den), _apply(model, y, 0.3), rtol=1e-5)
    # saving again over it replaces it whole
    other = _mlp()
    save_network(path, other)
    np.testing.assert_array_equal(_apply(load_network(path), y, 0.3), _apply(other, y, 0.3))
    assert [p.name for p in tmp_path.iterdir()] == ["net"]


def test_load_errors_name_the_path(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        load_network(tmp_path / "missing")
    path = save_network(tmp_path / "net", _mlp())
    # a network.json that does not match the stored weights
    bigger = MLPDenoiser(3, width=32, depth=2, embed_dim=8, sigma_data=0.7, rngs=nnx.Rngs(0))
    (path / "network.json").write_text(json.dumps({"network": bigger.config()}))
    with pytest.raises(ValueError, match=str(path / "state")):
        load_network(path)
    # corrupt state
    path = save_network(tmp_path / "net2", _mlp())
    shutil.rmtree(path / "state")
    (path / "state").mkdir()
    with pytest.raises(ValueError, match="cannot restore"):
        load_network(path)
