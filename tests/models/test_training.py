"""train_denoiser: learns the right thing, determinism, resume, logs, checkpoint errors;
noise distributions and loss weightings against their definitions."""

from __future__ import annotations

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from schedopt.models.networks import MLPDenoiser
from schedopt.models.noise import (
    WEIGHTINGS,
    FromSchedule,
    LogitNormal,
    LogNormal,
    LogUniform,
    loss_weight,
    noise_distribution,
)
from schedopt.models.training import train_denoiser
from schedopt.schedules import EDM, Cosine, LogSNRLinear

DATA = np.random.default_rng(0).normal(size=(512, 2)).astype(np.float32) * np.array([1.0, 0.5])


def _net(seed=0):
    return MLPDenoiser(2, width=32, depth=1, embed_dim=16, sigma_data=0.8, rngs=nnx.Rngs(seed))


def _leaves(model):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model))]


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b), strict=True))


# ---- noise distributions and weightings -----------------------------------------------


@pytest.mark.parametrize(
    "noise",
    [LogNormal(), LogitNormal(), LogUniform(sigma_min=0.01, sigma_max=20.0), FromSchedule(EDM())],
)
def test_reported_density_is_the_density_of_logsnr(noise):
    """Histogram of lam = -2 log s against the reported density at the draws."""
    s, density = noise.sample(jax.random.key(0), 200_000)
    lam = -2.0 * np.log(np.asarray(s))
    hist, edges = np.histogram(lam, bins=40, range=tuple(np.percentile(lam, [5, 95])))
    hist = hist / (len(lam) * np.diff(edges))
    centers = 0.5 * (edges[1:] + edges[:-1])
    order = np.argsort(lam)
    at_centers = np.interp(centers, lam[order], np.asarray(density)[order])
    np.testing.assert_allclose(hist, at_centers, rtol=0.12)


def test_schedule_noise_is_the_schedule_pushforward():
    sched = Cosine()
    s, density = FromSchedule(sched).sample(jax.random.key(3), 64)
    t = jax.random.uniform(jax.random.key(3), (64,))
    np.testing.assert_allclose(s, sched.noise_level(t), rtol=1e-5)
    np.testing.assert_allclose(density, sched.density_in_logsnr(-2 * jnp.log(s)), rtol=1e-3)


def test_named_noise_and_moments():
    assert noise_distribution("edm") == LogNormal(-1.2, 1.2)
    assert isinstance(noise_distribution(LogSNRLinear()), FromSchedule)
    s, _ = LogNormal(-0.4, 0.8).sample(jax.random.key(1), 100_000)
    assert float(jnp.mean(jnp.log(s))) == pytest.approx(-0.4, abs=0.01)
    assert float(jnp.std(jnp.log(s))) == pytest.approx(0.8, abs=0.01)
    with pytest.raises(ValueError, match="noise='gaussian'"):
        noise_distribution("gaussian")
    with pytest.raises(ValueError, match="scale"):
        LogNormal(0.0, -1.0)
    with pytest.raises(ValueError, match="sigma_min"):
        LogUniform(sigma_min=5.0, sigma_max=1.0)


def test_weightings_match_their_definitions():
    s = jnp.array([0.01, 0.3, 1.0, 7.0])
    density = jnp.array([0.1, 0.2, 0.3, 0.05])
    sd = 0.6
    c_out = s * sd / jnp.sqrt(s**2 + sd**2)
    # EDM: unit weight on the raw network's error, |D - x0| = c_out |F - target|
    np.testing.assert_allclose(loss_weight("edm", s, density, sd) * c_out**2, 1.0, rtol=1e-5)
    # SNR: the epsilon loss, |eps_hat - eps| = |D - x0| / s
    np.testing.assert_allclose(loss_weight("snr", s, density), 1 / s**2, rtol=1e-6)
    np.testing.assert_allclose(loss_weight("min-snr", s, density), jnp.minimum(1 / s**2, 5.0))
    np.testing.assert_allclose(loss_weight("uniform", s, density), 1.0)
    # VDM with a schedule's noise: -lam'(t) / 2 |eps_hat - eps|^2
    sched = EDM()
    t = jnp.array([0.1, 0.5, 0.9])
    lam, dlam = sched.logsnr_and_derivative(t)
    s = jnp.exp(-lam / 2)
    np.testing.assert_allclose(
        loss_weight("vdm", s, 1 / jnp.abs(dlam)), -0.5 * dlam / s**2, rtol=1e-5
    )
    with pytest.raises(ValueError, match="weighting='p2'"):
        loss_weight("p2", s, s)


# ---- training ----------------------------------------------------------------------------


def test_training_learns_the_gaussian_posterior_mean():
    """Data N(0, diag(1, 0.25)): the exact denoiser is c / (c + s^2) y per coordinate."""
    result = train_denoiser(
        _net(), DATA, num_steps=600, batch_size=128, learning_rate=3e-3, progress=False
    )
    y = jax.random.normal(jax.random.key(0), (256, 2)) * jnp.sqrt(jnp.array([1.0, 0.25]) + 0.25)
    c = jnp.array([1.0, 0.25])
    exact = c / (c + 0.25) * y
    got = jax.jit(lambda d: d(y, 0.5))(result.denoiser)
    err = float(jnp.mean((got - exact) ** 2) / jnp.mean(exact**2))
    untrained = float(jnp.mean((0.64 / 0.89 * y - exact) ** 2) / jnp.mean(exact**2))
    assert err < 0.05 and err < untrained / 3
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_deterministic_given_the_seed():
    kw = dict(num_steps=30, batch_size=16, progress=False, log_every=10)
    a = train_denoiser(_net(), DATA, seed=1, **kw)
    b = train_denoiser(_net(), DATA, seed=1, **kw)
    c = train_denoiser(_net(), DATA, seed=2, **kw)
    assert _same(a.model, b.model) and _same(a.raw_model, b.raw_model)
    assert not _same(a.model, c.model)
    assert not _same(a.model, a.raw_model)  # EMA differs from the last iterate


def test_hook_sees_the_ema_model_and_extends_the_log():
    seen = []

    def hook(step, model):
        seen.append((step, model))
        return {"probe": float(step) / 10}

    r = train_denoiser(
        _net(), DATA, num_steps=20, batch_size=16, log_every=10, progress=False, hook=hook
    )
    assert [s for s, _ in seen] == [10, 20] and [h["probe"] for h in r.history] == [1.0, 2.0]
    assert _same(seen[-1][1], r.model)


@pytest.mark.parametrize(
    "weighting",
    [
        pytest.param(w, marks=pytest.mark.slow) if w in ("min-snr", "uniform") else w
        for w in WEIGHTINGS
        if w != "edm"  # the default: every other test trains with it
    ],
)
def test_every_weighting_trains(weighting):
    noise = FromSchedule(EDM()) if weighting == "vdm" else "log-uniform"
    r = train_denoiser(
        _net(),
        DATA,
        num_steps=40,
        batch_size=32,
        weighting=weighting,
        noise=noise,
        progress=False,
        log_every=20,
    )
    assert r.step == 40 and all(np.isfinite(h["loss"]) for h in r.history)


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path):
    kw = dict(batch_size=16, checkpoint_every=20, log_every=10, progress=False, seed=3)
    straight = train_denoiser(_net(), DATA, num_steps=60, **kw)

    # stop halfway through: a callback raising after step 30 (checkpoint at 20)
    def interrupt(record):
        if record["step"] == 30:
            raise KeyboardInterrupt

    ckpt, log = tmp_path / "ckpt", tmp_path / "log.jsonl"
    with pytest.raises(KeyboardInterrupt):
        train_denoiser(
            _net(), DATA, num_steps=60, checkpoint_dir=ckpt, log_path=log, callback=interrupt, **kw
        )
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [10, 20, 30]
    # a differently initialized model: everything must come from the checkpoint
    resumed = train_denoiser(
        _net(seed=9), DATA, num_steps=60, checkpoint_dir=ckpt, log_path=log, **kw
    )
    assert resumed.step == 60
    assert _same(resumed.model, straight.model) and _same(resumed.raw_model, straight.raw_model)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [10, 20, 30, 40, 50, 60]  # the lines after the checkpoint were replaced
    assert sorted(p.name for p in ckpt.iterdir() if p.name.isdigit()) == ["40", "60"]

    # extending a finished run continues from its last checkpoint
    longer = train_denoiser(_net(), DATA, num_steps=80, checkpoint_dir=ckpt, **kw)
    assert longer.step == 80 and [h["step"] for h in longer.history] == [70, 80]


def test_mismatched_or_corrupt_checkpoint_errors_name_the_path(tmp_path):
    kw = dict(num_steps=10, batch_size=16, checkpoint_every=10, progress=False)
    ckpt = tmp_path / "ckpt"
    train_denoiser(_net(), DATA, checkpoint_dir=ckpt, **kw)
    with pytest.raises(ValueError, match=rf"{ckpt / '10'}.*batch_size"):
        train_denoiser(_net(), DATA, checkpoint_dir=ckpt, **{**kw, "batch_size": 32})
    with pytest.raises(ValueError, match="data_fingerprint"):
        train_denoiser(_net(), DATA * 2, checkpoint_dir=ckpt, **kw)
    for path in (ckpt / "10" / "train").rglob("*"):
        if path.is_file() and path.stat().st_size > 0 and "METADATA" not in path.name:
            path.write_bytes(b"garbage")
    shutil.rmtree(ckpt / "10" / "train" / "d", ignore_errors=True)
    with pytest.raises(ValueError, match=rf"cannot restore checkpoint {ckpt / '10'}"):
        train_denoiser(_net(), DATA, checkpoint_dir=ckpt, **{**kw, "num_steps": 20})


def test_resume_skips_an_unreadable_newest_checkpoint(tmp_path):
    from schedopt.io.checkpoint import CheckpointWarning

    kw = dict(batch_size=16, checkpoint_every=10, log_every=10, progress=False, seed=1)
    straight = train_denoiser(_net(), DATA, num_steps=30, **kw)
    ckpt = tmp_path / "ckpt"
    train_denoiser(_net(), DATA, num_steps=20, checkpoint_dir=ckpt, **kw)
    for path in (ckpt / "20" / "train").rglob("*"):
        if path.is_file() and path.parent.name == "d":  # its arrays, truncated
            path.write_bytes(path.read_bytes()[:8])
    with pytest.warns(CheckpointWarning, match="resumed from step 10: cannot restore"):
        resumed = train_denoiser(_net(seed=5), DATA, num_steps=30, checkpoint_dir=ckpt, **kw)
    assert resumed.step == 30 and _same(resumed.model, straight.model)
    assert (ckpt / "unreadable-20").is_dir()


@pytest.mark.slow
def test_cli_a_diverging_run_fails_in_one_line_and_leaves_nothing(tmp_path, capsys, train_args):
    from schedopt.cli import main

    out = tmp_path / "run"
    assert main(train_args(out, "--lr", "1e9")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training loss became nan at step 10" in err[0], err
    assert "(now --lr 1e+09)" in err[0]
    assert not out.exists()  # no checkpoint reached: the run directory is removed whole


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_steps=0), "num_steps=0"),
        (dict(batch_size=-1), "batch_size=-1"),
        (dict(weighting="p2"), "weighting='p2'"),
        (dict(noise="uniform"), "noise='uniform'"),
        (dict(ema_decay=1.0), "ema_decay=1.0"),
        (dict(checkpoint_every=0), "checkpoint_every=0"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(devices=4096), "devices=4096"),
        (dict(devices=[0]), r"devices=\[0\]"),
        (dict(devices=1, batch_size=33), None),  # one device divides any batch
    ],
)
def test_bad_arguments(kwargs, match):
    kwargs = {"num_steps": 5, **kwargs}
    if match is None:
        assert train_denoiser(_net(), DATA, progress=False, **kwargs).step == 5
        return
    with pytest.raises(ValueError, match=match):
        train_denoiser(_net(), DATA, progress=False, **kwargs)


SHARDED = """
import glob, json, sys
import numpy as np, jax
from flax import nnx
from schedopt.models.networks import MLPDenoiser
from schedopt.models.training import train_denoiser

data = np.random.default_rng(0).normal(size=(256, 2)).astype("float32")
out = {}
for learn in (None, "vdm", "uncertainty", "adaptive"):
    runs = {}
    for devices in (None, 2):
        net = MLPDenoiser(2, width=16, depth=1, sigma_data=1.0, rngs=nnx.Rngs(0))
        runs[devices] = train_denoiser(
            net, data, num_steps=6, batch_size=32, progress=False, learn_noise=learn,
            devices=devices, log_every=3,
        )
    one, two = (jax.tree.leaves((nnx.state(r.raw_model), r.noise_state)) for r in runs.values())
    diff = [float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(one, two)]
    spread = [x.sharding.is_fully_replicated and len(x.sharding.device_set) == 2 for x in two]
    losses = [runs[None].history[-1]["loss"], runs[2].history[-1]["loss"]]
    out[str(learn)] = {"max_diff": max(diff), "replicated": all(spread), "loss": losses}
files = glob.glob(sys.argv[1] + "/*train_step*after_optimizations.txt")
dumped = "".join(open(f).read() for f in files)
out["all_reduce"] = "all-reduce" in dumped
print(json.dumps(out))
"""


@pytest.mark.slow
def test_data_parallel_training_matches_one_device_for_every_learner(tmp_path):
    """On two (forced host) devices the batch is split and the gradients all-reduced: the
    weights and every noise learner's state end as on one device, replicated on both."""
    import os
    import subprocess
    import sys

    flags = f"--xla_force_host_platform_device_count=2 --xla_dump_to={tmp_path}"
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", SHARDED, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result.pop("all_reduce")  # the compiled step really is partitioned
    for learn, r in result.items():
        assert r["max_diff"] < 1e-5, learn
        assert r["replicated"], learn
        assert r["loss"][0] == pytest.approx(r["loss"][1], rel=1e-5), learn


def test_bad_data():
    with pytest.raises(ValueError, match=r"data.shape=\(10, 3\)"):
        train_denoiser(_net(), np.zeros((10, 3)), num_steps=1, progress=False)
    with pytest.raises(ValueError, match="finite"):
        train_denoiser(_net(), np.full((10, 2), np.nan), num_steps=1, progress=False)


# ---- the command line ---------------------------------------------------------------------


@pytest.mark.slow
def test_cli_train_writes_a_loadable_model_and_resumes(tmp_path, capsys, train_args):
    from schedopt.cli import main
    from schedopt.models.nnx_adapter import load_denoiser, read_network_metadata

    out = tmp_path / "run"
    assert main(train_args(out, "--noise", "schedule:cosine", "--weighting", "vdm")) == 0
    summary = json.loads((out / "train.json").read_text())
    assert summary["steps"] == 20 and summary["noise"]["schedule"]["family"] == "cosine"
    assert summary["samples"]["nfe"] <= 3 and (out / "samples.png").stat().st_size > 0
    assert read_network_metadata(out / "network")["dataset"] == "ring"
    den = load_denoiser(out / "network")
    assert jax.jit(lambda d: d(jnp.zeros((2, 2)), 1.0))(den).shape == (2, 2)
    # the same command with more steps continues from the checkpoint at step 20
    assert (
        main(train_args(out, "--noise", "schedule:cosine", "--weighting", "vdm", "--steps", "30"))
        == 0
    )
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30]
    # other settings against the same checkpoints: a clear error, exit code 2
    capsys.readouterr()
    assert main(train_args(out, "--steps", "40")) == 2
    assert "different settings" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["--noise", "gauss"], "--noise must be one of"),
        (["--noise", "schedule:nope"], "schedule:FAMILY"),
        (["--steps", "0"], "argument --steps: must be an integer from 1"),
        (["--devices", "4096"], "--devices 4096: this machine has"),
        (["--devices", "0"], "argument --devices: must be an integer from 1"),
    ],
)
def test_cli_train_errors(tmp_path, capsys, extra, match, train_args):
    from schedopt.cli import main

    assert main(train_args(tmp_path / "run", *extra)) == 2
    assert match in capsys.readouterr().err
