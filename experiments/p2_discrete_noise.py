"""Euler–Maruyama on the reverse VP-SDE with discrete noise.

Claim under test (Choi & Fan, Euler–Maruyama with discrete noise, arXiv 2506.08337): EM
with i.i.d. noise coordinates of mean 0 and variance 1 (Rademacher ``±1``, uniform on
``[-sqrt 3, sqrt 3]``) converges like Gaussian noise; what matters is the variance, and a
mis-scaled variance ``kappa != 1`` degrades samples.

Setting: DDPM's linear-beta VP schedule (``VPLinear``, ``s`` from 80 to 0.002), ``T`` EM
steps in its time (``final="zero"``: the last step returns the exact denoiser), start
``x_T ~ N(0, I)``, exact denoisers (no training error), noise variance ``kappa``.

- Gaussian target (16-D, eigenvalues 0.01..1, non-zero mean): the output mean and
  covariance in closed form (:mod:`schedopt.gaussian`), hence the exact KL and W2 to the
  data; and the exact excess kurtosis of the output (only discrete noise has any), from
  the same affine step coefficients. A Monte Carlo run of the real sampler checks the
  closed form for every noise type.
- Gaussian-mixture target (8-mode 2-D ring): samples of the real sampler against fresh
  data; sliced W2 (256 projections) and MMD (multi-scale RBF), with the noise floor of
  two independent data sets of the same size.

Writes ``results.json``, ``table.md`` and ``p2_discrete_noise.png`` to ``--out``.

    .venv/bin/python experiments/p2_discrete_noise.py            # a few minutes on 2 cores
    .venv/bin/python experiments/p2_discrete_noise.py --smoke --out /tmp/p2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from schedopt import gaussian as G
from schedopt.data import ring
from schedopt.io.atomic import atomic_write_bytes, atomic_write_json
from schedopt.models import GaussianDenoiser, GaussianMixtureDenoiser
from schedopt.objectives.discrepancy import mmd, sliced_wasserstein
from schedopt.sampling import NOISES, draw_noise, euler_maruyama, initial_state
from schedopt.schedules import VPLinear, grid_times

#: Fourth cumulant of one noise coordinate (unit variance).
CUMULANT4 = {"gaussian": 0.0, "rademacher": -2.0, "uniform": -1.2}
FULL = dict(
    steps=(10, 20, 50, 100, 200, 500, 1000),
    kappas=(0.25, 0.5, 1.0, 2.0, 4.0),
    num_samples=10_000,
    num_mmd=2_000,
    mc_steps=100,
)
SMOKE = dict(steps=(5, 10), kappas=(0.5, 1.0), num_samples=500, num_mmd=200, mc_steps=5)
MMD_BANDWIDTHS = (0.05, 0.1, 0.2, 0.5, 1.0)


def gaussian_target() -> G.Spectrum:
    c = np.geomspace(0.01, 1.0, 16)
    return G.Spectrum(c, mean=np.linspace(-0.5, 0.5, 16))


def gaussian_exact(spectrum, schedule, num_steps: int, kappa: float) -> dict:
    """Closed-form KL, W2 and excess kurtosis of the EM output on Gaussian data."""
    out = _gaussian_exact(spectrum, schedule, num_steps, jnp.asarray(kappa))
    return {k: (float(v) if v.ndim == 0 else np.asarray(v)) for k, v in out.items()}


@eqx.filter_jit
def _gaussian_exact(spectrum, schedule, num_steps, kappa):
    grid = G.step_grid(schedule, num_steps)
    solver = G.GaussianEulerMaruyama(process="vp", kappa=kappa)
    moments = G.output_moments(spectrum, grid, solver, "vp")
    var = moments.variance()
    c = spectrum.eigenvalues
    kl = jnp.sum(G.kl_per_direction(moments, "forward"))
    w2 = jnp.sqrt(jnp.sum(moments.mean_offset**2 + (jnp.sqrt(var) - jnp.sqrt(c)) ** 2))
    # e' = a e + b mu + sqrt(q) xi: noise of step k reaches the output with variance
    # q_k prod_{j>k} a_j^2, and its fourth cumulant is that squared times kappa4(xi).
    co = solver.coefficients(c, grid)
    q = co.q_rel * (c[None] + grid.sigmas[1:, None] ** 2)
    later = jnp.cumprod(co.a[::-1] ** 2, axis=0)[::-1]  # prod_{j>=k} a_j^2
    later = jnp.concatenate([later[1:], jnp.ones_like(later[:1])])  # prod_{j>k}
    fourth = jnp.sum((q * later) ** 2, axis=0)
    return dict(
        kl=kl,
        w2=w2,
        variance=var,
        offset=moments.mean_offset,
        fourth_over_var2=fourth / var**2,  # times kappa4(xi) = excess kurtosis
    )


@eqx.filter_jit
def _em(denoiser, schedule, y0, xi, kappa):
    times = grid_times(xi.shape[0] + 1)  # final="zero": N points, N - 1 noisy steps
    return euler_maruyama(denoiser, schedule, y0, xi, times, process="vp", kappa=kappa)


def run_sampler(noise, num_steps, kappa, denoiser, schedule, key, num_samples, dim):
    """``EulerMaruyama(num_steps, "vp", noise, kappa).sample(..., init="vp")``, written with
    the functional form so that one compilation serves every noise type and ``kappa``."""
    key_init, key_noise = jax.random.split(key)
    y0 = initial_state(key_init, schedule, (num_samples, dim), "vp")
    xi = draw_noise(key_noise, (num_steps - 1, num_samples, dim), noise)
    return _em(denoiser, schedule, y0, xi, jnp.asarray(kappa))


def fit_order(steps, errors, floor=0.0) -> float | None:
    """Slope of ``log error`` against ``log T`` (negated), over points clearly above ``floor``."""
    pts = [(t, e) for t, e in zip(steps, errors, strict=True) if e > 3 * floor and e > 0]
    if len(pts) < 2:
        return None
    t, e = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(-np.polyfit(t, e, 1)[0])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (tests)")
    parser.add_argument("--out", default="experiments/out/p2", help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = SMOKE if args.smoke else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    schedule = VPLinear()
    steps, kappas = cfg["steps"], cfg["kappas"]
    key = jax.random.key(args.seed)

    # ---- Gaussian target: closed form ------------------------------------------------
    spectrum = gaussian_target()
    gauss = {k: [gaussian_exact(spectrum, schedule, t, k) for t in steps] for k in kappas}
    gaussian_rows = {
        str(k): dict(
            kl=[r["kl"] for r in rows],
            w2=[r["w2"] for r in rows],
            order_kl=fit_order(steps[-4:], [r["kl"] for r in rows][-4:]),
            order_w2=fit_order(steps[-4:], [r["w2"] for r in rows][-4:]),
        )
        for k, rows in gauss.items()
    }
    kurtosis = {
        noise: [float(np.max(np.abs(CUMULANT4[noise] * r["fourth_over_var2"]))) for r in gauss[1.0]]
        for noise in NOISES
    }
    # Monte Carlo check of the closed form with the real sampler, every noise type.
    den_g = GaussianDenoiser(spectrum.eigenvalues, mean=spectrum.mean)
    t_mc = cfg["mc_steps"]
    exact_mc = gaussian_exact(spectrum, schedule, t_mc, 1.0)
    mc_check = {}
    for noise in NOISES:
        x = np.asarray(
            run_sampler(
                noise,
                t_mc,
                1.0,
                den_g,
                schedule,
                jax.random.fold_in(key, 1),
                cfg["num_samples"],
                spectrum.dim,
            ),
            np.float64,
        )
        var, n = x.var(0), x.shape[0]
        z_var = (var - exact_mc["variance"]) / (exact_mc["variance"] * np.sqrt(2.0 / n))
        z_mean = (x.mean(0) - spectrum.mean - exact_mc["offset"]) / np.sqrt(
            exact_mc["variance"] / n
        )
        kurt = ((x - x.mean(0)) ** 4).mean(0) / var**2 - 3.0
        mc_check[noise] = dict(
            max_abs_z_mean=float(np.max(np.abs(z_mean))),
            max_abs_z_variance=float(np.max(np.abs(z_var))),
            mean_excess_kurtosis_sampled=float(np.mean(kurt)),
            mean_excess_kurtosis_exact=float(
                np.mean(CUMULANT4[noise] * exact_mc["fourth_over_var2"])
            ),
        )
    print(f"[gaussian] closed forms and MC check done ({time.perf_counter() - started:.0f} s)")

    # ---- Gaussian-mixture target: samples -------------------------------------------
    mixture = ring(8, radius=1.0, std=0.1)
    den_m = GaussianMixtureDenoiser.from_mixture(mixture)
    n, n_mmd = cfg["num_samples"], cfg["num_mmd"]
    key_data, key_floor, key_proj, key_run = jax.random.split(jax.random.fold_in(key, 2), 4)
    data = mixture.sample(key_data, n)
    bandwidths = jnp.asarray(MMD_BANDWIDTHS)

    @jax.jit
    def _metrics(x, data, bandwidths):
        return sliced_wasserstein(x, data, key_proj, 256), mmd(x[:n_mmd], data[:n_mmd], bandwidths)

    metrics = lambda x: _metrics(x, data, bandwidths)
    floor_sw, floor_mmd = (float(v) for v in metrics(mixture.sample(key_floor, n)))
    mixture_rows = {}
    for noise in NOISES:
        for kappa in kappas:
            sw, mm = [], []
            for t in steps:
                x = run_sampler(noise, t, kappa, den_m, schedule, key_run, n, 2)
                a, b = metrics(x)
                sw.append(float(a))
                mm.append(float(b))
            mixture_rows[f"{noise}/{kappa}"] = dict(
                noise=noise,
                kappa=kappa,
                sliced_w2=sw,
                mmd=mm,
                order_sliced_w2=fit_order(steps, sw, floor_sw),
            )
        print(f"[mixture] {noise} done ({time.perf_counter() - started:.0f} s)")

    command = "python experiments/p2_discrete_noise.py" + (" --smoke" if args.smoke else "")
    results = dict(
        command=command,
        seconds=time.perf_counter() - started,
        steps=list(steps),
        kappas=list(kappas),
        gaussian=dict(
            dim=spectrum.dim,
            by_kappa=gaussian_rows,
            max_abs_excess_kurtosis=kurtosis,
            monte_carlo_check=dict(steps=t_mc, num_samples=n, by_noise=mc_check),
        ),
        mixture=dict(
            name="ring(8, radius=1, std=0.1)",
            num_samples=n,
            num_mmd=n_mmd,
            noise_floor=dict(sliced_w2=floor_sw, mmd=floor_mmd),
            rows=mixture_rows,
        ),
    )
    atomic_write_json(out / "results.json", results)
    atomic_write_bytes(out / "table.md", render_table(results).encode())
    plot(results, out / "p2_discrete_noise.png")
    print(render_table(results))
    print(f"wrote {out}/results.json, table.md, p2_discrete_noise.png ({results['seconds']:.0f} s)")
    return results


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3g}"


def render_table(r: dict) -> str:
    steps = r["steps"]
    head = "| " + " | ".join(["noise", "kappa", *[f"T={t}" for t in steps], "order"]) + " |"
    rule = "|" + "---|" * (len(steps) + 3)
    lines = [f"Command: `{r['command']}` ({r['seconds']:.0f} s)", ""]
    lines += ["Gaussian target, exact KL(data || output) (the same for all three noises):", ""]
    lines += [head.replace("noise | ", ""), "|" + "---|" * (len(steps) + 2)]
    for k, row in r["gaussian"]["by_kappa"].items():
        lines.append("| " + " | ".join([k, *map(_fmt, row["kl"]), _fmt(row["order_kl"])]) + " |")
    lines += ["", "Gaussian target, exact W2 to the data:", ""]
    lines += [head.replace("noise | ", ""), "|" + "---|" * (len(steps) + 2)]
    for k, row in r["gaussian"]["by_kappa"].items():
        lines.append("| " + " | ".join([k, *map(_fmt, row["w2"]), _fmt(row["order_w2"])]) + " |")
    mc = r["gaussian"]["monte_carlo_check"]
    lines += [
        "",
        f"Monte Carlo check of the closed form (real sampler, T = {mc['steps']}, "
        f"n = {mc['num_samples']}): largest |z| of the 16 means and variances, and the mean "
        "excess kurtosis over directions, sampled vs exact:",
        "",
        "| noise | max abs z (mean) | max abs z (variance) | kurtosis sampled | kurtosis exact |",
        "|---|---|---|---|---|",
    ]
    for noise, c in mc["by_noise"].items():
        cells = [c["max_abs_z_mean"], c["max_abs_z_variance"]]
        cells += [c["mean_excess_kurtosis_sampled"], c["mean_excess_kurtosis_exact"]]
        lines.append("| " + " | ".join([noise, *map(_fmt, cells)]) + " |")
    lines += ["", "Gaussian target, exact max |excess kurtosis| of the output (kappa = 1):", ""]
    lines += ["| " + " | ".join(["noise", *[f"T={t}" for t in steps]]) + " |"]
    lines += ["|" + "---|" * (len(steps) + 1)]
    for noise, vals in r["gaussian"]["max_abs_excess_kurtosis"].items():
        lines.append("| " + " | ".join([noise, *map(_fmt, vals)]) + " |")
    mix = r["mixture"]
    floor = mix["noise_floor"]
    lines += [
        "",
        f"Gaussian mixture ({mix['name']}), sliced W2 to fresh data, n = {mix['num_samples']} "
        f"(noise floor {floor['sliced_w2']:.3g}); order fitted above 3x the floor:",
        "",
        head,
        rule,
    ]
    for row in mix["rows"].values():
        cells = [row["noise"], _fmt(row["kappa"]), *map(_fmt, row["sliced_w2"])]
        lines.append("| " + " | ".join([*cells, _fmt(row["order_sliced_w2"])]) + " |")
    lines += [
        "",
        f"Gaussian mixture, MMD^2 (n = {mix['num_mmd']}, noise floor {floor['mmd']:.2g}):",
        "",
    ]
    lines += [head.replace(" order |", ""), "|" + "---|" * (len(steps) + 2)]
    for row in mix["rows"].values():
        lines.append(
            "| " + " | ".join([row["noise"], _fmt(row["kappa"]), *map(_fmt, row["mmd"])]) + " |"
        )
    return "\n".join(lines) + "\n"


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.asarray(r["steps"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(r["kappas"])))
    ax = axes[0]
    for color, (k, row) in zip(colors, r["gaussian"]["by_kappa"].items(), strict=True):
        ax.loglog(steps, row["w2"], "o-", color=color, label=f"kappa={k}")
    ax.set(title="Gaussian target: exact W2 (any noise)", xlabel="EM steps T", ylabel="W2")
    ax.legend(fontsize=8)
    ax = axes[1]
    for noise, vals in r["gaussian"]["max_abs_excess_kurtosis"].items():
        if noise != "gaussian":
            ax.loglog(steps, vals, "s-", label=noise)
    ax.loglog(steps, vals[0] * steps[0] / steps, "k:", label="~ 1/T")
    ax.set(title="Gaussian target: output |excess kurtosis|", xlabel="EM steps T")
    ax.legend(fontsize=8)
    ax = axes[2]
    markers = {"gaussian": "o-", "rademacher": "s--", "uniform": "^:"}
    for row in r["mixture"]["rows"].values():
        color = colors[r["kappas"].index(row["kappa"])]
        label = f"{row['noise']}, kappa={row['kappa']}"
        ax.loglog(steps, row["sliced_w2"], markers[row["noise"]], color=color, label=label, ms=4)
    ax.axhline(r["mixture"]["noise_floor"]["sliced_w2"], color="gray", lw=1, label="noise floor")
    ax.set(title="8-mode ring: sliced W2 to data", xlabel="EM steps T", ylabel="sliced W2")
    ax.legend(fontsize=6, ncol=2)
    fig.suptitle(
        "Choi & Fan: Euler–Maruyama (VP, linear beta) with Gaussian / Rademacher / uniform noise"
    )
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


if __name__ == "__main__":
    main(sys.argv[1:])
