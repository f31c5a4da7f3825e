"""Two processes joined by ``jax.distributed`` on loopback (gloo collectives on CPU): each
holds half of the data, ``global_batch`` assembles it, and the sharded objective's loss and
gradient equal the single-process values."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

WORKER = textwrap.dedent(
    """
    import json, sys
    process_id, port = int(sys.argv[1]), sys.argv[2]
    import jax
    jax.config.update("jax_enable_x64", True)
    from schedopt.parallel import batch_mesh, global_batch, initialize_distributed
    initialize_distributed(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)

    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np
    from schedopt.models import GaussianMixtureDenoiser
    from schedopt.objectives.discrepancy import MMD
    from schedopt.objectives.trajectory import TrajectoryMatching
    from schedopt.sampling import Ancestral, ODESampler
    from schedopt.schedules import EDM, PiecewiseLinear

    assert jax.process_count() == 2 and jax.device_count() == 2
    den = GaussianMixtureDenoiser(
        jnp.array([0.3, 0.7]), jnp.array([[-1.5, 0.0], [1.0, 1.0]]), jnp.full((2, 2), 0.2)
    )
    data = np.random.default_rng(0).normal(size=(32, 2))  # the same in both processes
    local = data[16 * process_id : 16 * (process_id + 1)]  # each holds its half
    schedule = PiecewiseLinear.from_schedule(EDM(sigma_max=20.0), num_knots=6)
    params, static = eqx.partition(schedule, eqx.is_inexact_array)
    bandwidths = jnp.array([0.5, 1.0, 2.0])

    @eqx.filter_jit
    def value_and_grad(p, objective, key):
        return eqx.filter_value_and_grad(lambda q: objective(eqx.combine(q, static), key))(p)

    def replicated(x):
        return np.asarray(x.addressable_data(0))

    global_mesh = batch_mesh()
    objectives = {
        "mmd": lambda mesh, d: MMD(den, Ancestral(6), d, batch_size=16, bandwidths=bandwidths,
                                   mesh=mesh),
        "trajectory": lambda mesh, d: TrajectoryMatching(den, ODESampler(3, "euler"), batch_size=16,
                                                         reference_steps=16, mesh=mesh),
    }
    out = {}
    for name in sys.argv[3:]:
        sharded = objectives[name](global_mesh, global_batch(local, global_mesh))
        loss, grad = value_and_grad(params, sharded, jax.random.key(3))
        out[name] = dict(loss=float(replicated(loss)), grad=replicated(grad.logits).tolist())
        if process_id == 0:  # the single-process reference, on this process's device only
            single = objectives[name](batch_mesh(jax.local_devices()), jnp.asarray(data))
            loss1, grad1 = value_and_grad(params, single, jax.random.key(3))
            out[name]["single"] = dict(loss=float(loss1), grad=grad1.logits.tolist())
    print(json.dumps(out))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(names):
    port = str(_free_port())
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(i), port, *names],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=900)
            assert p.returncode == 0, stderr[-4000:]
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return outs


@pytest.mark.slow
def test_two_processes_match_one():
    names = ["mmd", "trajectory"]
    first, second = _run(names)
    for name in names:
        for r in (first[name], second[name]):  # both processes see the same replicated result
            np.testing.assert_allclose(r["loss"], first[name]["single"]["loss"], rtol=1e-10)
            np.testing.assert_allclose(
                r["grad"], first[name]["single"]["grad"], rtol=1e-8, atol=1e-12
            )
        assert np.linalg.norm(first[name]["grad"]) > 0
