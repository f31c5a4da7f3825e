"""Orbax checkpoints: bit-exact round trips and clear errors for bad checkpoints."""

import shutil

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from schedopt.io.atomic import DirectoryInUseError
from schedopt.io.checkpoint import (
    CheckpointWarning,
    OptimizationCheckpointer,
    checkpoint_info,
    load_schedule,
    save_schedule,
)
from schedopt.schedules import (
    EDM,
    MonotoneCubic,
    MonotoneMLP,
    PiecewiseLinear,
    Tabulated,
    Tangent,
)

SCHEDULES = {
    "edm": EDM(rho=5.5, sigma_min=0.01, sigma_max=20.0),
    "tangent": Tangent(gamma=1.7),
    "piecewise": PiecewiseLinear.from_schedule(EDM(), num_knots=8),
    "cubic": MonotoneCubic.from_schedule(EDM(), num_knots=12),
    "mlp": MonotoneMLP.init(jax.random.key(1), num_features=8),
    "sd": Tabulated.scaled_linear(),
}


def leaves_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_round_trip_is_bit_exact(tmp_path, name):
    schedule = SCHEDULES[name]
    loaded = load_schedule(save_schedule(tmp_path / "ckpt", schedule))
    assert type(loaded) is type(schedule)
    leaves_equal(
        eqx.filter(loaded, eqx.is_inexact_array), eqx.filter(schedule, eqx.is_inexact_array)
    )
    t = jnp.linspace(0, 1, 17)
    np.testing.assert_array_equal(loaded.logsnr(t), schedule.logsnr(t))
    assert float(loaded.sigma_max) == pytest.approx(float(schedule.sigma_max))


def test_save_schedule_replaces_an_existing_checkpoint(tmp_path):
    save_schedule(tmp_path / "c", EDM(rho=3.0))
    save_schedule(tmp_path / "c", EDM(rho=4.0))
    assert float(load_schedule(tmp_path / "c").rho) == 4.0


def test_load_with_like_checks_family_and_shapes(tmp_path):
    path = save_schedule(tmp_path / "c", SCHEDULES["cubic"])
    like = MonotoneCubic.uniform(12)
    assert jnp.allclose(load_schedule(path, like).logits, SCHEDULES["cubic"].logits)
    with pytest.raises(ValueError, match="'monotone-cubic' schedule, but a 'edm'"):
        load_schedule(path, EDM())
    with pytest.raises(ValueError, match=r"shape \(12,\) .* shape \(4,\)"):
        load_schedule(path, MonotoneCubic.uniform(4))


def test_missing_and_corrupt_checkpoints_name_the_path(tmp_path):
    with pytest.raises(ValueError, match="nowhere.*does not exist"):
        load_schedule(tmp_path / "nowhere")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ValueError, match="junk.*no 'meta' item"):
        load_schedule(tmp_path / "junk")
    path = save_schedule(tmp_path / "c", SCHEDULES["cubic"])
    # truncate every data file of the parameter item
    for f in (path / "params").rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    with pytest.raises(ValueError, match=r"c'.*cannot be read \(truncated or corrupt\?\)"):
        load_schedule(path)


def _state(schedule, optimizer):
    params = eqx.filter(schedule, eqx.is_inexact_array)
    return params, optimizer.init(params)


def _step(params, opt_state, optimizer, key):
    grads = jax.tree.map(lambda p: jax.random.normal(key, p.shape, p.dtype), params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def test_optimization_checkpoint_round_trip(tmp_path):
    schedule = SCHEDULES["cubic"]
    optimizer = optax.adam(1e-2)
    params, opt_state = _state(schedule, optimizer)
    key = jax.random.key(7)
    for _ in range(3):
        key, sub = jax.random.split(key)
        params, opt_state = _step(params, opt_state, optimizer, sub)
    current = eqx.combine(params, eqx.filter(schedule, eqx.is_inexact_array, inverse=True))
    with OptimizationCheckpointer(tmp_path, every=2) as ckpt:
        assert not ckpt.save(3, params=params, opt_state=opt_state, key=key)
        losses = np.arange(3.0)
        assert ckpt.save(
            3,
            params=params,
            opt_state=opt_state,
            key=key,
            schedule=current,
            history={"losses": losses},
            force=True,
        )
        fresh_params, fresh_state = _state(schedule, optimizer)
        step, p, o, k, history = ckpt.restore(
            params=fresh_params, opt_state=fresh_state, key=jax.random.key(0), schedule=schedule
        )
    assert step == 3
    np.testing.assert_array_equal(history["losses"], losses)
    leaves_equal(p, params)
    leaves_equal(o, opt_state)
    np.testing.assert_array_equal(jax.random.key_data(k), jax.random.key_data(key))
    # the schedule at that step can be read from the same directory
    np.testing.assert_array_equal(load_schedule(tmp_path).logits, current.logits)


def test_optimization_checkpoint_keeps_the_newest(tmp_path):
    params, opt_state = _state(EDM(), optax.sgd(0.1))
    with OptimizationCheckpointer(tmp_path, every=1, max_to_keep=2) as ckpt:
        assert ckpt.restore(params=params, opt_state=opt_state) is None
        for i in range(1, 6):
            ckpt.save(i, params=params, opt_state=opt_state)
        assert ckpt.latest_step == 5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["4", "5"]


def test_legacy_uint32_keys_round_trip(tmp_path):
    params, opt_state = _state(EDM(), optax.sgd(0.1))
    key = jax.random.PRNGKey(3)
    with OptimizationCheckpointer(tmp_path, every=1) as ckpt:
        ckpt.save(1, params=params, opt_state=opt_state, key=key)
        k = ckpt.restore(params=params, opt_state=opt_state, key=jax.random.PRNGKey(0)).key
    np.testing.assert_array_equal(k, key)


def test_mismatched_optimization_checkpoints_are_refused(tmp_path):
    schedule = SCHEDULES["cubic"]
    params, opt_state = _state(schedule, optax.adam(0.1))
    key = jax.random.key(0)
    with OptimizationCheckpointer(tmp_path, every=1) as ckpt:
        ckpt.save(1, params=params, opt_state=opt_state, key=key, schedule=schedule)
        other_params, other_state = _state(MonotoneCubic.uniform(5), optax.adam(0.1))
        with pytest.raises(ValueError, match=r"1'.*shape \(12,\).*shape \(5,\)"):
            ckpt.restore(params=other_params, opt_state=other_state, key=key)
        with pytest.raises(ValueError, match="different optimizer"):
            ckpt.restore(params=params, opt_state=optax.sgd(0.1).init(params), key=key)
        p2, s2 = _state(EDM(), optax.adam(0.1))
        with pytest.raises(ValueError, match="'monotone-cubic' schedule, but this run"):
            ckpt.restore(params=p2, opt_state=s2, key=key, schedule=EDM())
        with pytest.raises(ValueError, match="PRNG key of kind"):
            ckpt.restore(params=params, opt_state=opt_state, key=jax.random.PRNGKey(0))


def test_corrupt_optimization_checkpoint_is_a_clear_error(tmp_path):
    params, opt_state = _state(SCHEDULES["cubic"], optax.adam(0.1))
    with OptimizationCheckpointer(tmp_path, every=1) as ckpt:
        ckpt.save(1, params=params, opt_state=opt_state)
    shutil.rmtree(tmp_path / "1" / "state")
    with OptimizationCheckpointer(tmp_path, every=1) as ckpt:
        with pytest.raises(ValueError, match=r"1'.*cannot be read"):
            ckpt.restore(params=params, opt_state=opt_state)


def test_bad_arguments(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="checkpoint_every=0"):
        OptimizationCheckpointer(tmp_path / "d", every=0)
    with pytest.raises(ValueError, match="not a directory"):
        OptimizationCheckpointer(tmp_path / "file")
    with pytest.raises(ValueError, match="AbstractSchedule"):
        save_schedule(tmp_path / "s", {"rho": 1.0})


def test_settings_are_checked_on_restore(tmp_path):
    params, opt_state = _state(EDM(), optax.sgd(0.1))
    settings = {"nfe": 10, "lr": 0.01, "spectrum": "digits"}
    with OptimizationCheckpointer(tmp_path, every=1) as ckpt:
        ckpt.save(2, params=params, opt_state=opt_state, settings=settings, info={"target": 9})
        assert ckpt.restore(params=params, opt_state=opt_state, settings=settings).step == 2
        with pytest.raises(
            ValueError,
            match=r"other settings: lr: 0.01 in the checkpoint, 0.02 now; nfe: 10 in the ch",
        ):
            ckpt.restore(
                params=params, opt_state=opt_state, settings={**settings, "nfe": 5, "lr": 0.02}
            )
    info = checkpoint_info(tmp_path)
    assert (info.step, info.settings, info.info, info.every) == (2, settings, {"target": 9}, 1)
    with OptimizationCheckpointer(tmp_path / "old", every=1) as ckpt:
        ckpt.save(1, params=params, opt_state=opt_state)  # no settings recorded
        with pytest.raises(ValueError, match="records no settings"):
            ckpt.restore(params=params, opt_state=opt_state, settings=settings)


def _truncate_arrays(step_dir):
    for path in step_dir.rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(path.read_bytes()[:8])


def test_restore_falls_back_to_the_newest_readable_step(tmp_path):
    params, opt_state = _state(SCHEDULES["cubic"], optax.adam(0.1))
    with OptimizationCheckpointer(tmp_path, every=1, max_to_keep=3) as ckpt:
        for step in (1, 2, 3):
            ckpt.save(step, params=params, opt_state=opt_state, history={"h": np.arange(step)})
    _truncate_arrays(tmp_path / "3")
    (tmp_path / "2" / "meta" / "metadata").write_text("{not json")
    with OptimizationCheckpointer(tmp_path, every=1, max_to_keep=3) as ckpt:
        with pytest.warns(
            CheckpointWarning, match="resumed from step 1 .*renamed unreadable-3, unreadable-2"
        ):
            restored = ckpt.restore(params=params, opt_state=opt_state)
        assert restored.step == 1 and ckpt.latest_step == 1
        assert ckpt.save(2, params=params, opt_state=opt_state)  # the step number is free again
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "1", "2", "unreadable-2", "unreadable-3",
    ]  # fmt: skip
    _truncate_arrays(tmp_path / "1")
    _truncate_arrays(tmp_path / "2")
    with OptimizationCheckpointer(tmp_path, every=1) as ckpt:
        with pytest.raises(ValueError, match=r"no checkpoint in .* can be read: checkpoint .*2'"):
            ckpt.restore(params=params, opt_state=opt_state)


def test_a_checkpoint_directory_has_one_writer(tmp_path):
    with OptimizationCheckpointer(tmp_path, every=1):
        with pytest.raises(DirectoryInUseError, match="checkpoint directory .* is in use"):
            OptimizationCheckpointer(tmp_path, every=1)
    with OptimizationCheckpointer(tmp_path, every=1):  # released on close
        pass


def test_optimize_refuses_a_checkpoint_with_other_settings(tmp_path):
    from schedopt.gaussian import Spectrum
    from schedopt.objectives import GaussianKL
    from schedopt.optimize import optimize

    objective = GaussianKL(Spectrum([1.0, 2.0]), num_steps=3)
    kw = dict(num_iterations=4, progress=False, checkpoint_dir=tmp_path, checkpoint_every=2)
    optimize(MonotoneCubic.uniform(4), objective, settings={"run": "a"}, **kw)
    with pytest.raises(ValueError, match="other settings: run: 'a' in the checkpoint, 'b' now"):
        optimize(
            MonotoneCubic.uniform(4),
            objective,
            settings={"run": "b"},
            **{**kw, "num_iterations": 6},
        )
    # the failed call released the directory: the right settings resume it
    result = optimize(
        MonotoneCubic.uniform(4), objective, settings={"run": "a"}, **{**kw, "num_iterations": 6}
    )
    assert result.num_iterations == 6
