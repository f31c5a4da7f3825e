"""Sharded sample-based objectives: on 4 (fake CPU) devices the loss and its gradient
equal the single-device values. Runs in a subprocess so that ``XLA_FLAGS`` applies."""

import json
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

WORKER = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import jax.numpy as jnp
    from schedopt.models import GaussianMixtureDenoiser
    from schedopt.objectives.discrepancy import discrepancy_objective
    from schedopt.objectives.trajectory import TrajectoryMatching
    from schedopt.parallel import batch_mesh
    from schedopt.sampling import Ancestral, EulerMaruyama, ODESampler
    from schedopt.schedules import EDM, PiecewiseLinear

    assert jax.device_count() == 4, jax.devices()
    den = GaussianMixtureDenoiser(
        jnp.array([0.3, 0.7]), jnp.array([[-1.5, 0.0], [1.0, 1.0]]), jnp.full((2, 2), 0.2)
    )
    data = den.sample(jax.random.key(1), 64)
    schedule = PiecewiseLinear.from_schedule(EDM(sigma_max=20.0), num_knots=6)
    params, static = eqx.partition(schedule, eqx.is_inexact_array)

    def build(name, mesh):
        if name == "trajectory":
            return TrajectoryMatching(den, ODESampler(4, "heun"), num_pairs=32,
                                      validation_fraction=0.0, reference_steps=32, mesh=mesh)
        sampler = {
            "mmd": Ancestral(6),
            "sliced-w2": ODESampler(4, "euler"),
            "frechet": EulerMaruyama(8, "vp", noise="rademacher"),
        }[name]
        opts = dict(batch_size=32, mesh=mesh)
        if name == "mmd":
            opts["data_batch_size"] = 32
        return discrepancy_objective(name, den, sampler, data, **opts)

    @eqx.filter_jit
    def value_and_grad(p, objective, key):
        return eqx.filter_value_and_grad(lambda q: objective(eqx.combine(q, static), key))(p)

    out = {}
    for name in sys.argv[1:]:
        results = {}
        for label, mesh in (("four", batch_mesh()), ("one", batch_mesh(jax.devices()[:1]))):
            objective = build(name, mesh)
            if name == "trajectory":
                y0, _ = objective.batch(jax.random.key(2))
            else:
                y0 = objective.initial_states(schedule, jax.random.key(2))
            loss, grad = value_and_grad(params, objective, jax.random.key(3))
            results[label] = dict(loss=float(loss), grad=grad.logits.tolist(),
                                  devices=len(y0.sharding.device_set))
        out[name] = results
    print(json.dumps(out))
    """
)


def _run(names):
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, *names], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(results):
    for name, r in results.items():
        assert r["four"]["devices"] == 4 and r["one"]["devices"] == 1, name
        assert np.isfinite(r["four"]["loss"]) and abs(r["four"]["loss"]) > 0, name
        assert np.linalg.norm(r["four"]["grad"]) > 0, name
        np.testing.assert_allclose(r["four"]["loss"], r["one"]["loss"], rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(
            r["four"]["grad"], r["one"]["grad"], rtol=1e-8, atol=1e-12, err_msg=name
        )


def test_mmd_on_four_devices_equals_one_device():
    _check(_run(["mmd"]))


@pytest.mark.slow
def test_other_objectives_on_four_devices_equal_one_device():
    _check(_run(["trajectory", "frechet"]))  # a diffrax ODE solve and a stochastic SDE solve


def test_batch_size_must_divide_over_devices():
    from schedopt.parallel import check_batch_size, shard_batch

    assert check_batch_size("batch_size", 8) == 8
    with pytest.raises(ValueError, match="batch_size"):
        check_batch_size("batch_size", 0)
    assert shard_batch(jnp.ones((3, 2))).shape == (3, 2)  # one device: a no-op
