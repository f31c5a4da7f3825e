"""The NNX schedule module: frozen vs trainable, inside a user's model, loaded from files."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from schedopt.io.card import make_card, save_card
from schedopt.io.checkpoint import save_schedule
from schedopt.io.flax_schedule import NoiseSchedule, ScheduleConstant
from schedopt.schedules import EDM, VP, MonotoneCubic, Tabulated, grid

SCHEDULE = MonotoneCubic.from_schedule(EDM(), num_knots=8)
T = jnp.linspace(0.0, 1.0, 17)


class Model(nnx.Module):
    """A toy user model: a linear layer scaled by the schedule's noise level."""

    def __init__(self, schedule, *, trainable, rngs):
        self.schedule = NoiseSchedule(schedule, trainable=trainable)
        self.linear = nnx.Linear(1, 1, rngs=rngs)

    def __call__(self, x, t):
        return self.linear(x) * jnp.log(self.schedule.noise_level(t))[:, None]


def loss_fn(model):
    return jnp.mean(model(jnp.ones((3, 1)), jnp.array([0.2, 0.5, 0.8])) ** 2)


@pytest.mark.parametrize("schedule", [SCHEDULE, EDM(rho=5.0), Tabulated.scaled_linear()])
def test_module_computes_exactly_what_the_schedule_does(schedule):
    module = NoiseSchedule(schedule)
    np.testing.assert_array_equal(module(T), schedule.logsnr(T))
    np.testing.assert_array_equal(module.noise_level(T), schedule.noise_level(T))
    np.testing.assert_array_equal(module.alpha(T), schedule.alpha(T, VP()))
    np.testing.assert_array_equal(module.grid(7, "min"), grid(schedule, 7, "min"))
    levels = module.training_noise_levels(jax.random.key(0), (1000,))
    assert levels.shape == (1000,)
    assert float(levels.min()) >= float(schedule.sigma_min) * 0.999


def _train(model, steps=3):
    optimizer = nnx.Optimizer(model, optax.adam(0.1), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss, grads

    for _ in range(steps):
        _, grads = step(model, optimizer)
    return grads


def test_frozen_schedule_is_not_trained():
    model = Model(SCHEDULE, trainable=False, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    assert "schedule" not in params
    assert len(jax.tree.leaves(nnx.state(model, ScheduleConstant))) == 1
    kernel = np.asarray(model.linear.kernel[...])
    grads = _train(model)
    assert "schedule" not in grads
    np.testing.assert_array_equal(model.schedule.schedule.logits, SCHEDULE.logits)
    assert not np.array_equal(np.asarray(model.linear.kernel[...]), kernel)


def test_trainable_schedule_trains_and_stays_monotone():
    model = Model(SCHEDULE, trainable=True, rngs=nnx.Rngs(0))
    grads = _train(model)
    assert float(jnp.abs(grads["schedule"]["parameters"][0][...]).sum()) > 0
    learned = model.schedule.schedule
    assert not np.array_equal(np.asarray(learned.logits), np.asarray(SCHEDULE.logits))
    lam = learned.logsnr(jnp.linspace(0, 1, 201))
    assert bool(jnp.all(jnp.diff(lam) < 0))
    assert float(lam[0]) == pytest.approx(float(SCHEDULE.logsnr_max))


def test_user_model_state_saves_with_orbax(tmp_path):
    model = Model(SCHEDULE, trainable=False, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "model", state)
    abstract = nnx.state(nnx.eval_shape(lambda: Model(SCHEDULE, trainable=False, rngs=nnx.Rngs(1))))
    with ocp.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(tmp_path / "model", abstract)
    merged = nnx.merge(graphdef, restored)
    np.testing.assert_array_equal(merged.schedule(T), SCHEDULE.logsnr(T))


def test_loaders(tmp_path):
    save_schedule(tmp_path / "ckpt", SCHEDULE)
    module = NoiseSchedule.from_checkpoint(tmp_path / "ckpt", trainable=True)
    np.testing.assert_array_equal(module(T), SCHEDULE.logsnr(T))
    assert len(jax.tree.leaves(nnx.state(module, nnx.Param))) == 1
    save_card(tmp_path / "run" / "schedule.json", make_card(SCHEDULE, num_steps=5, process="ve"))
    from_card = NoiseSchedule.from_card(tmp_path / "run")
    assert from_card.process == "ve"
    np.testing.assert_allclose(from_card(T), SCHEDULE.logsnr(T), rtol=1e-6)
    np.testing.assert_array_equal(from_card.alpha(T), jnp.ones_like(T))
    with pytest.raises(ValueError, match="monotone-cubic.*'edm'"):
        NoiseSchedule.from_checkpoint(tmp_path / "ckpt", like=EDM())
    with pytest.raises(ValueError, match="AbstractSchedule"):
        NoiseSchedule("edm")
