"""Process and timestep conversions against independent references and brute force."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedopt.io.convert import (
    check_final_zero_grid,
    distinct_decreasing_integers,
    fit_noise_levels,
    from_process,
    grid_for_discrete_model,
    grid_from_discrete_model,
    noise_levels_to_timesteps,
    rescale_noise_levels,
    table_range,
    timesteps_to_noise_levels,
    to_process,
)
from schedopt.schedules import EDM, Tabulated, grid, process_from_name

SD = Tabulated.scaled_linear()


def sigma_to_t_reference(sigma, alphas_cumprod):
    """diffusers' / k-diffusion's ``_sigma_to_t``: linear in log sigma, clipped, in NumPy."""
    log_sigmas = np.log(((1 - alphas_cumprod) / alphas_cumprod) ** 0.5)
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - log_sigmas[:, np.newaxis]
    low_idx = np.cumsum(dists >= 0, axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    high_idx = low_idx + 1
    low, high = log_sigmas[low_idx], log_sigmas[high_idx]
    w = np.clip((low - log_sigma) / (low - high), 0, 1)
    return (1 - w) * low_idx + w * high_idx


def sd_alphas_cumprod():
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


@pytest.mark.parametrize("process", ["vp", "ve", "flow"])
def test_to_process_matches_the_schedule_processes(process):
    s = np.array([80.0, 3.0, 0.5, 0.002])
    alpha, sigma = to_process(s, process)
    lam = -2.0 * np.log(s)
    proc = process_from_name(process)
    np.testing.assert_allclose(alpha, proc.alpha(jnp.asarray(lam)), rtol=1e-5)
    np.testing.assert_allclose(sigma, proc.sigma(jnp.asarray(lam)), rtol=1e-5)
    np.testing.assert_allclose(from_process(alpha, sigma), s, rtol=1e-12)
    # s = 0 is the clean end: alpha = 1, sigma = 0 in every process
    a0, s0 = to_process([0.0], process)
    assert a0.tolist() == [1.0] and s0.tolist() == [0.0]


def test_stable_diffusion_table_has_its_known_range():
    lo, hi = table_range(SD)
    assert lo == pytest.approx(0.029168, rel=1e-4)
    assert hi == pytest.approx(14.6146, rel=1e-4)


def test_fractional_timesteps_match_diffusers_sigma_to_t():
    sigmas = np.geomspace(14.0, 0.03, 37)
    ours = noise_levels_to_timesteps(sigmas, SD, rounding="none")
    ref = sigma_to_t_reference(sigmas, sd_alphas_cumprod())
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_timesteps_and_noise_levels_are_inverse():
    sigmas = np.geomspace(14.5, 0.0295, 50)
    back = timesteps_to_noise_levels(noise_levels_to_timesteps(sigmas, SD, rounding="none"), SD)
    np.testing.assert_allclose(back, sigmas, rtol=1e-9)
    ks = np.array([999.0, 500.5, 3.25, 0.0])
    np.testing.assert_allclose(
        noise_levels_to_timesteps(timesteps_to_noise_levels(ks, SD), SD, rounding="none"),
        ks,
        atol=1e-8,
    )


def test_distinct_rounding_resolves_collisions_at_the_clean_end():
    sigmas = np.array([14.6, 0.0300, 0.0296, 0.0293, 0.0292])
    nearest = noise_levels_to_timesteps(sigmas, SD, rounding="nearest")
    assert len(set(nearest.tolist())) < len(nearest)  # plain rounding collides
    distinct = noise_levels_to_timesteps(sigmas, SD, rounding="distinct")
    assert distinct.tolist() == [999, 3, 2, 1, 0]


@given(
    st.lists(st.floats(0.0, 40.0), min_size=1, max_size=6, unique=True).map(
        lambda xs: sorted(xs, reverse=True)
    )
)
def test_distinct_rounding_is_valid_and_l1_optimal(values):
    upper = 40
    r = distinct_decreasing_integers(values, upper=upper)
    assert np.all(np.diff(r) < 0) and r.min() >= 0 and r.max() <= upper
    target = np.rint(values)
    cost = np.abs(r - target).sum()
    if len(values) <= 3:  # brute force over all strictly decreasing tuples
        best = min(
            np.abs(np.array(c[::-1]) - target).sum()
            for c in itertools.combinations(range(upper + 1), len(values))
        )
        assert cost == best
    if np.all(np.diff(target) < 0):
        np.testing.assert_array_equal(r, target)


def test_edm_grid_to_stable_diffusion_and_back_clip():
    levels = np.asarray(grid(EDM(sigma_min=0.03, sigma_max=14.0), 12))
    out = grid_for_discrete_model(levels, SD, endpoints="clip")  # inside SD's range: kept
    ts = out["timesteps"]
    assert len(ts) == 12 and ts == sorted(set(ts), reverse=True)
    assert out["sigmas"][-1] == 0.0 and len(out["sigmas"]) == 13
    back = grid_from_discrete_model(ts, SD)
    # integer timesteps move a level by at most half a table step in log sigma
    step = np.max(np.abs(np.diff(np.log(np.asarray(SD.timestep_noise_levels())))))
    assert np.max(np.abs(np.log(back[:-1]) - np.log(levels[:-1]))) <= 0.5 * step + 1e-9
    assert back[-1] == 0.0
    frac_back = timesteps_to_noise_levels(out["fractional_timesteps"], SD)
    np.testing.assert_allclose(frac_back, levels[:-1], rtol=1e-9)


def test_edm_range_is_rescaled_by_default_and_clipping_it_is_refused():
    levels = np.asarray(grid(EDM(), 10), dtype=np.float64)
    with pytest.raises(
        ValueError, match=r"lie above the model.s range \[0.0291672, 14.6146\]"
    ) as e:
        grid_for_discrete_model(levels, SD, endpoints="clip")
    assert "80," in str(e.value) and "zero-length" in str(e.value)
    rescaled = grid_for_discrete_model(levels, SD)  # default: the grid's own range
    assert rescaled == grid_for_discrete_model(levels, SD, source_range=(levels[-2], levels[0]))
    assert rescaled["timesteps"][0] == 999 and rescaled["timesteps"][-1] == 0
    back = grid_from_discrete_model(
        rescaled["fractional_timesteps"], SD, target_range=(levels[-2], levels[0])
    )
    np.testing.assert_allclose(back, levels, rtol=1e-6)
    np.testing.assert_allclose(
        grid_from_discrete_model([999, 0], SD), [*table_range(SD)[::-1], 0.0], rtol=1e-12
    )


def test_the_exported_sigmas_are_the_timesteps_grid():
    levels = np.asarray(grid(EDM(), 12), dtype=np.float64)
    out = grid_for_discrete_model(levels, SD)
    table = np.sqrt((1 - sd_alphas_cumprod()) / sd_alphas_cumprod())
    np.testing.assert_allclose(out["sigmas"][:-1], table[out["timesteps"]], rtol=1e-6)


def test_clip_keeps_levels_inside_the_range_and_one_beyond_each_end():
    s = np.array([20.0, 5.0, 1.0, 0.01, 0.0])
    np.testing.assert_array_equal(
        fit_noise_levels(s, (0.03, 14.0), endpoints="clip"), [14.0, 5.0, 1.0, 0.03, 0.0]
    )
    with pytest.raises(ValueError, match=r"0.02, 0.01 lie below the model's range \[0.03, 14\]"):
        fit_noise_levels([5.0, 0.02, 0.01, 0.0], (0.03, 14.0), endpoints="clip")
    with pytest.raises(ValueError, match="1 zero-length"):  # one clipped onto a level at the end
        fit_noise_levels([20.0, 14.0, 1.0, 0.0], (0.03, 14.0), endpoints="clip")


@given(st.integers(1, 30), st.floats(0.5, 3.0))
def test_rescaled_levels_fill_the_range_and_strictly_decrease(n, rho):
    levels = np.asarray(grid(EDM(rho=rho), n), dtype=np.float64)
    source = (0.002, 80.0) if n == 1 else (levels[-2], levels[0])  # default: the grid's ends
    out = fit_noise_levels(levels, (0.0292, 14.6), source_range=None if n > 1 else source)
    assert out[0] == 14.6 and out[-1] == 0.0 and np.all(np.diff(out) < 0)
    if n > 1:
        assert out[-2] == 0.0292
    lo, hi = source
    expected = np.exp(
        np.log(0.0292) + np.log(levels[:-1] / lo) / np.log(hi / lo) * np.log(14.6 / 0.0292)
    )
    np.testing.assert_allclose(out[:-1], expected, rtol=1e-12)


def test_check_final_zero_grid_names_the_bad_step():
    with pytest.raises(ValueError, match=r"zero-length step: s\[1\]=2.0 is followed by s\[2\]=2.0"):
        check_final_zero_grid("s", [3.0, 2.0, 2.0, 0.0])
    with pytest.raises(ValueError, match=r"increasing step: s\[0\]=1.0"):
        check_final_zero_grid("s", [1.0, 2.0, 0.0])
    with pytest.raises(ValueError, match="final='zero' grid"):
        check_final_zero_grid("s", [0.0])


def test_rescale_keeps_the_logsnr_fraction():
    s = np.array([80.0, 7.0, 0.3, 0.002, 0.0])
    out = rescale_noise_levels(s, (0.002, 80.0), (0.03, 15.0))
    f_in = np.log(s[:-1] / 0.002) / np.log(80.0 / 0.002)
    f_out = np.log(out[:-1] / 0.03) / np.log(15.0 / 0.03)
    np.testing.assert_allclose(f_out, f_in, atol=1e-12)
    np.testing.assert_allclose(rescale_noise_levels(out, (0.03, 15.0), (0.002, 80.0)), s)


def test_bad_inputs():
    with pytest.raises(ValueError, match="rounding"):
        noise_levels_to_timesteps([1.0], SD, rounding="up")
    with pytest.raises(ValueError, match="noise_levels"):
        noise_levels_to_timesteps([1.0, -1.0], SD)
    with pytest.raises(ValueError, match="non-increasing"):
        noise_levels_to_timesteps([1.0, 2.0], SD)
    with pytest.raises(ValueError, match="cannot place 1001"):
        distinct_decreasing_integers(np.linspace(999, 0, 1001), upper=999)
    with pytest.raises(ValueError, match="timesteps"):
        timesteps_to_noise_levels([1000], SD)
    with pytest.raises(ValueError, match="final='zero' grid"):
        grid_for_discrete_model([3.0, 1.0], SD)
    with pytest.raises(ValueError, match="distinct timesteps on a 1000-timestep model; use num"):
        grid_for_discrete_model(np.append(np.geomspace(14, 0.03, 1001), 0.0), SD)
    with pytest.raises(ValueError, match="endpoints"):
        grid_for_discrete_model([3.0, 0.0], SD, endpoints="stretch")
    with pytest.raises(ValueError, match="process"):
        to_process([1.0], "edm")
