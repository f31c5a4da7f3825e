"""The torch bridge (:mod:`schedopt.integrations.torch`): values and gradients equal torch's
own and finite differences; every sampler runs through it under jit and grad (unrolled, in
``lax.scan`` and in ``diffeqsolve``'s loop) and under vmap, agreeing with a JAX twin of the
same network; guidance and its NFE accounting; errors that name the argument."""

from __future__ import annotations

import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from schedopt.integrations.torch import (  # noqa: E402
    TorchDenoiser,
    TorchModel,
    clear_saved_graphs,
    model_evaluations,
)
from schedopt.models import PredictionDenoiser  # noqa: E402
from schedopt.sampling import SAMPLERS, make_sampler  # noqa: E402
from schedopt.schedules import EDM, Tabulated  # noqa: E402

DIM = 3


@pytest.fixture(autouse=True, scope="module")
def _x64_for_the_process():
    """float64 for the whole process, not ``with jax.enable_x64(True)``: that setting is
    thread-local, and XLA runs the torch callbacks (whose arguments JAX converts) on its own
    threads."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


FREQUENCIES = (1e-3, 3e-3, 1e-2, 0.05)


class Tiny(torch.nn.Module):
    """``tanh(x W1 + sin(t f) Wt + c Wc) W2``: smooth in ``x`` and ``t``; ``c`` an optional
    conditioning vector."""

    def __init__(self, dtype=torch.float64, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)

        def param(*shape, scale=1.0):
            return torch.nn.Parameter(scale * torch.randn(*shape, generator=g, dtype=dtype))

        self.w1 = param(DIM, 8, scale=DIM**-0.5)
        self.wt = param(len(FREQUENCIES), 8)
        self.wc = param(2, 8)
        self.w2 = param(8, DIM, scale=8**-0.5)
        self.register_buffer("freq", torch.tensor(FREQUENCIES, dtype=dtype))

    def forward(self, x, t, c=None):
        h = x @ self.w1 + torch.sin(t[:, None] * self.freq) @ self.wt
        if c is not None:
            h = h + c @ self.wc
        return torch.tanh(h) @ self.w2


def twin(module: Tiny, c=None):
    """The same network in JAX, with the module's weights."""
    w = {k: jnp.asarray(v.detach().numpy()) for k, v in module.state_dict().items()}

    def apply(x, t):
        h = x @ w["w1"] + jnp.sin(t[:, None] * w["freq"]) @ w["wt"]
        if c is not None:
            h = h + jnp.asarray(c.numpy()) @ w["wc"]
        return jnp.tanh(h) @ w["w2"]

    return apply


def states(n=5, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, DIM)))


def test_model_value_and_vjp_equal_torch_autograd():
    module = Tiny().eval()
    model = TorchModel(module)
    x = states()
    t = jnp.asarray([3.0, 40.0, 250.0, 600.0, 999.0])
    g = states(seed=1)
    value, vjp = jax.vjp(jax.jit(model), x, t)
    gx, gt = vjp(g)
    xt = torch.tensor(np.asarray(x), requires_grad=True)
    tt = torch.tensor(np.asarray(t), requires_grad=True)
    out = module(xt, tt)
    ref_x, ref_t = torch.autograd.grad(out, (xt, tt), torch.tensor(np.asarray(g)))
    np.testing.assert_allclose(value, out.detach().numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(gx, ref_x.numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(gt, ref_t.numpy(), rtol=1e-14, atol=1e-15)


def test_float32_model_equals_torch():
    module = Tiny(torch.float32).eval()
    x = jnp.asarray(np.asarray(states()), jnp.float32)
    t = jnp.linspace(1.0, 900.0, 5, dtype=jnp.float32)
    value, gt = jax.value_and_grad(lambda t: jnp.sum(TorchModel(module)(x, t) ** 2))(t)
    tt = torch.tensor(np.asarray(t), requires_grad=True)
    ref = torch.sum(module(torch.tensor(np.asarray(x)), tt) ** 2)
    (ref_t,) = torch.autograd.grad(ref, tt)
    assert value.dtype == jnp.float32
    np.testing.assert_allclose(value, ref.item(), rtol=1e-6)
    np.testing.assert_allclose(gt, ref_t.numpy(), rtol=1e-5)


KINDS = [
    ("eps", "timestep"),
    ("v", "timestep"),
    ("x0", "timestep"),
    ("eps", "sigma"),
    ("eps", "edm"),
    ("v", "edm"),
    ("flow", "flow"),
]


def _denoiser(prediction, time_input, module):
    table = Tabulated.ddpm_linear() if time_input == "timestep" else None
    return TorchDenoiser(module, prediction, time_input, table=table, time_scale=1000.0)


@pytest.mark.parametrize("prediction, time_input", KINDS)
def test_gradients_match_finite_differences(prediction, time_input):
    """d/ds and a directional d/dy of sum(w * D(y; s)) against central differences."""
    den = _denoiser(prediction, time_input, Tiny().eval())
    y = states() * 3.0
    w, direction = states(seed=2), states(seed=3)

    def f(y, s):
        return jnp.sum(w * den(y, s))

    for s in (0.05, 0.8, 12.0):
        grad_y, grad_s = jax.jit(jax.grad(f, argnums=(0, 1)))(y, s)
        h = 1e-6 * s
        fd_s = (f(y, s + h) - f(y, s - h)) / (2 * h)
        fd_y = (f(y + 1e-6 * direction, s) - f(y - 1e-6 * direction, s)) / 2e-6
        np.testing.assert_allclose(grad_s, fd_s, rtol=1e-6)
        np.testing.assert_allclose(jnp.sum(grad_y * direction), fd_y, rtol=1e-7)


@pytest.mark.parametrize("prediction, time_input", KINDS)
def test_denoiser_equals_its_jax_twin(prediction, time_input):
    """The adapters feed the model what a JAX PredictionDenoiser (or EDM's preconditioning)
    would: value and gradients with respect to y and s agree to float64 round-off."""
    module = Tiny().eval()
    den = _denoiser(prediction, time_input, module)
    ref = eqx.tree_at(lambda d: d.model, den, twin(module))  # the same adapters in JAX
    y = states() * 2.0

    def f(d):
        return jax.grad(lambda y, s: jnp.sum(jnp.cos(d(y, s))), argnums=(0, 1))

    for s in (0.02, 1.3, 70.0):
        np.testing.assert_allclose(den(y, s), ref(y, s), rtol=1e-13, atol=1e-14)
        for a, b in zip(jax.jit(f(den))(y, s), f(ref)(y, s), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


def _pair(module):
    """The bridged eps-model denoiser on DDPM's table and its JAX twin."""
    table = Tabulated.ddpm_linear()
    den = TorchDenoiser(TorchModel(module), "eps", table=table)
    ref = PredictionDenoiser(twin(module), "eps", "vp", conditioning=table.noise_level_to_timestep)
    return den, ref


@pytest.mark.parametrize(
    "name, num_steps",
    [(name, 3) for name in SAMPLERS] + [("euler", 20), ("dpmpp-2m", 20), ("euler-maruyama", 20)],
)
def test_every_sampler_through_the_bridge(name, num_steps):
    """Value and schedule gradient of each sampler on the bridged model equal those on the
    JAX twin (3 steps: unrolled, ``lax.scan`` for ancestral; 20: ``diffeqsolve``), and a
    few-step gradient runs each model evaluation once (the backward pass reuses the graph)."""
    den, ref = _pair(Tiny().eval())
    sampler = make_sampler(name, num_steps)
    schedule = EDM(sigma_min=0.02, sigma_max=80.0)
    y0 = states() * 80.0

    def loss(d):
        return jax.jit(
            jax.value_and_grad(lambda sch: jnp.mean(sampler(d, sch, y0, jax.random.key(1)) ** 2))
        )

    bridged = loss(den)
    value, grad = bridged(schedule)
    value_ref, grad_ref = loss(ref)(schedule)
    np.testing.assert_allclose(value, value_ref, rtol=1e-12)
    np.testing.assert_allclose(grad.rho, grad_ref.rho, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad.sigma_max, grad_ref.sigma_max, rtol=1e-9, atol=1e-12)
    if num_steps == 3 and name in ("euler", "heun", "dpmpp-2m", "unipc", "ancestral"):
        before = den.model.evaluations
        jax.block_until_ready(bridged(schedule))
        assert den.model.evaluations - before == sampler.nfe
    assert den.model.saved_graphs == 0


def test_vmap_folds_into_the_batch():
    den, ref = _pair(Tiny().eval())
    ys = jnp.stack([states(), 2.0 * states(seed=4), -states(seed=5)])
    levels = jnp.asarray([0.3, 2.0, 40.0])

    def total(d):
        return lambda lv: jnp.sum(jnp.sin(jax.vmap(d)(ys, lv)))

    np.testing.assert_allclose(jax.vmap(den)(ys, levels), jax.vmap(ref)(ys, levels), atol=1e-14)
    np.testing.assert_allclose(
        jax.jit(jax.grad(total(den)))(levels), jax.grad(total(ref))(levels), rtol=1e-12
    )


def test_guidance_combines_two_evaluations_and_counts_them():
    """``pred_u + w (pred_c - pred_u)`` from one doubled batch; 2 model evaluations per call,
    as model_evaluations says and the counter finds."""
    module = Tiny().eval()
    cond, uncond = torch.tensor([[1.0, -0.5]], dtype=torch.float64), torch.zeros(1, 2)
    uncond = uncond.double()
    guided = TorchDenoiser(
        TorchModel(
            module, conditioning={"c": cond}, unconditional={"c": uncond}, guidance_scale=3.0
        ),
        "eps",
        table=Tabulated.ddpm_linear(),
    )

    def single(c):
        return TorchDenoiser(
            TorchModel(module, conditioning={"c": c}), "eps", table=Tabulated.ddpm_linear()
        )

    y = states() * 4.0
    d_c, d_u = single(cond)(y, 1.5), single(uncond)(y, 1.5)
    np.testing.assert_allclose(guided(y, 1.5), d_u + 3.0 * (d_c - d_u), rtol=1e-13)
    sampler = make_sampler("dpmpp-2m", 4)
    assert guided.evaluations_per_call == 2
    assert model_evaluations(sampler, guided) == 2 * sampler.nfe == 8
    before = guided.model.evaluations
    run = jax.jit(lambda sch: sampler(guided, sch, y * 80.0))
    jax.block_until_ready(run(EDM()))
    assert guided.model.evaluations - before == 8


def test_conditioning_with_the_batch_size_and_a_bad_size():
    module = Tiny().eval()
    rows = torch.randn(5, 2, dtype=torch.float64)
    model = TorchModel(module, conditioning={"c": rows})
    x, t = states(), jnp.full((5,), 10.0)
    expected = module(torch.tensor(np.asarray(x)), torch.tensor(np.asarray(t)), rows)
    np.testing.assert_allclose(model(x, t), expected.detach().numpy(), atol=1e-15)
    bad = TorchModel(module, conditioning={"c": torch.randn(3, 2, dtype=torch.float64)})
    with pytest.raises(ValueError, match="conditioning 'c' has leading size 3"):
        bad(x, t)


def test_saved_graphs_are_bounded_and_can_be_cleared():
    model = TorchModel(Tiny().eval(), max_saved_graphs=2)
    x = states()
    for k in range(4):  # forward passes whose backward pass never comes
        jax.vjp(model, x, jnp.full((5,), float(k)))
    assert model.saved_graphs == 2
    clear_saved_graphs(model)
    assert model.saved_graphs == 0
    # a backward pass that finds no graph recomputes it, with the same result
    t = jnp.full((5,), 7.0)
    _, vjp = jax.vjp(model, x, t)
    clear_saved_graphs(model)
    gx, gt = vjp(jnp.ones_like(x))
    _, vjp_kept = jax.vjp(model, x, t)
    kx, kt = vjp_kept(jnp.ones_like(x))
    np.testing.assert_array_equal(gx, kx)
    np.testing.assert_array_equal(gt, kt)


class WrongShape(torch.nn.Module):
    def forward(self, x, t):
        return torch.cat([x, x], dim=1)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: TorchDenoiser(Tiny(), "noise"), "prediction='noise'"),
        (lambda: TorchDenoiser(Tiny(), "eps", "timestep"), "needs the model's `table`"),
        (lambda: TorchDenoiser(Tiny(), "flow", "timestep", table=Tabulated.ddpm_linear()), "flow"),
        (lambda: TorchDenoiser(Tiny(), "x0", "edm"), "time_input='edm' needs prediction"),
        (lambda: TorchDenoiser(Tiny(), "eps", "clock"), "time_input"),
        (lambda: TorchModel(Tiny(), guidance_scale=2.0), "needs `unconditional`"),
        (lambda: TorchModel(Tiny(), unconditional={"c": 0}), "without `guidance_scale`"),
        (
            lambda: TorchModel(
                Tiny(), conditioning={"c": 1}, unconditional={"d": 0}, guidance_scale=2.0
            ),
            "keys of `conditioning`",
        ),
        (lambda: TorchModel("not a module"), "module="),
        (
            lambda: TorchModel(Tiny(torch.float64))(jnp.ones((2, 3), jnp.float32), jnp.ones(2)),
            "parameters are torch.float64 but x has dtype float32",
        ),
        (lambda: TorchModel(WrongShape())(jnp.ones((2, 3)), jnp.ones(2)), "returned shape"),
        (lambda: TorchModel(Tiny(torch.float32))(jnp.ones((2, 3)), jnp.ones(3)), "`t` must"),
    ],
)
def test_bad_input_names_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA build of torch and a GPU")
def test_a_cuda_module_gives_the_cpu_values():
    module = Tiny().eval()
    x, t = states(), jnp.linspace(1.0, 900.0, 5)
    cpu = jax.grad(lambda t: jnp.sum(TorchModel(module)(x, t) ** 2))(t)
    gpu = jax.grad(lambda t: jnp.sum(TorchModel(module.to("cuda"))(x, t) ** 2))(t)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-12)


def test_importing_the_torch_integration_needs_no_torch():
    code = (
        "import sys, schedopt, schedopt.cli, schedopt.integrations.torch, "
        "schedopt.integrations.torch_models, schedopt.integrations.torch_bench; "
        "from schedopt.cli import bench; from schedopt.cli._objectives import trajectory; "
        "bad = [m for m in ('torch', 'diffusers') if m in sys.modules]; assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_doctests():
    import doctest

    import schedopt.integrations.torch as module

    assert doctest.testmod(module).failed == 0


def test_dpmpp_2m_on_a_unet_equals_torch_alone():
    """Value and gradient w.r.t. the levels of a 5-NFE DPM-Solver++(2M) sample on a float64
    diffusers UNet2DModel: schedopt through the bridge vs the same sampler written in torch
    (:func:`schedopt.integrations.torch_bench.torch_dpmpp_2m`)."""
    pytest.importorskip("diffusers")
    from schedopt.integrations.torch_bench import torch_denoiser, torch_dpmpp_2m
    from schedopt.integrations.torch_models import digits_unet
    from schedopt.sampling import probability_flow

    module = digits_unet((8, 16), attention=False, norm_num_groups=4, dtype=torch.float64)
    table = Tabulated.ddpm_linear()
    den = TorchDenoiser(module, "v", table=table)
    levels = np.asarray(EDM(sigma_min=0.0101, sigma_max=150.0).noise_level(np.linspace(1, 0, 5)))
    rng = np.random.default_rng(0)
    y0 = rng.normal(size=(6, 1, 8, 8)) * np.sqrt(1 + levels[0] ** 2)
    target = rng.normal(size=(6, 1, 8, 8))

    def loss(lv):
        return jnp.mean(
            (probability_flow(den, lv, jnp.asarray(y0), solver="dpmpp-2m") - target) ** 2
        )

    value, grad = jax.jit(jax.value_and_grad(loss))(jnp.asarray(levels))
    denoise = torch_denoiser(module, -0.5 * np.asarray(table.logsnrs), "v")
    lv = torch.tensor(levels, requires_grad=True)
    ref = torch.mean((torch_dpmpp_2m(denoise, lv, torch.tensor(y0)) - torch.tensor(target)) ** 2)
    (ref_grad,) = torch.autograd.grad(ref, lv)
    np.testing.assert_allclose(value, ref.item(), rtol=1e-13)
    np.testing.assert_allclose(grad, ref_grad.numpy(), rtol=1e-10, atol=1e-12)


def test_adapters_recover_the_exact_gaussian_denoiser():
    """diffusers-style torch models of Gaussian data (schedopt.integrations.testing): each
    prediction and time input, read through from_scheduler, gives the exact D(y; s)."""
    diffusers = pytest.importorskip("diffusers")
    from schedopt.integrations import testing

    data = testing.GaussianData([0.5, -1.0, 0.2], [0.25, 4.0, 1.0])
    ddpm = diffusers.DDPMScheduler()
    cases = [
        (testing.VPModel(data, ddpm.alphas_cumprod.numpy()), ddpm),
        (
            testing.VPModel(data, ddpm.alphas_cumprod.numpy(), prediction="v"),
            diffusers.DDPMScheduler(prediction_type="v_prediction"),
        ),
        (testing.FlowModel(data), diffusers.FlowMatchEulerDiscreteScheduler()),
        (testing.EDMModel(data, sigma_data=0.5), diffusers.EDMEulerScheduler()),
        (
            testing.EDMModel(data, sigma_data=0.5, prediction="v_prediction"),
            diffusers.EDMEulerScheduler(prediction_type="v_prediction"),
        ),
    ]
    y = states() * 2.0
    for model, scheduler in cases:
        den = TorchDenoiser.from_scheduler(model, scheduler)
        for s in (0.05, 1.0, 9.0):
            exact = data.denoise(torch.tensor(np.asarray(y)), s).numpy()
            np.testing.assert_allclose(den(y, s), exact, rtol=1e-9, atol=1e-10)
