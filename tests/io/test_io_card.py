"""Schedule cards: contents against an independent computation, round trips, bad files."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.io.card import (
    CARD_VERSION,
    card_nfe,
    card_schedule,
    load_card,
    make_card,
    regrid_card,
    save_card,
)
from schedopt.schedules import EDM, MonotoneCubic, PiecewiseLinear, Tabulated, Tangent

SCHEDULES = {
    "edm": EDM(rho=5.0),
    "tangent": Tangent(gamma=2.0),
    "piecewise": PiecewiseLinear.from_schedule(EDM(), num_knots=8),
    "cubic": MonotoneCubic.from_schedule(EDM(), num_knots=8),
    "sd": Tabulated.scaled_linear(),
}


def edm_reference(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """Karras et al. eq. (5), written out in NumPy float64."""
    i = np.arange(n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return np.append((hi + i / (n - 1) * (lo - hi)) ** rho, 0.0)


@pytest.mark.parametrize("n", [2, 5, 18])
def test_edm_grid_matches_karras_formula(n):
    card = make_card(EDM(), num_steps=n)
    np.testing.assert_allclose(card["grid"]["noise_levels"], edm_reference(n), rtol=2e-5)
    assert len(card["grid"]["t"]) == n
    lam = np.asarray(card["grid"]["logsnr"])
    np.testing.assert_allclose(np.exp(-lam / 2), edm_reference(n)[:-1], rtol=2e-5)


def test_final_min_grid_has_n_plus_one_points_and_no_zero():
    card = make_card(EDM(), num_steps=4, final="min")
    grid = card["grid"]
    assert len(grid["noise_levels"]) == 5 and len(grid["t"]) == 5
    assert grid["noise_levels"][-1] == pytest.approx(0.002, rel=1e-5)
    assert grid["t"] == [1.0, 0.75, 0.5, 0.25, 0.0]


@pytest.mark.parametrize("process", ["vp", "ve", "flow"])
def test_alpha_sigma_columns_follow_the_process(process):
    card = make_card(EDM(), num_steps=6, process=process)
    g = card["grid"]
    alpha, sigma = np.asarray(g["alpha"]), np.asarray(g["sigma"])
    s = np.asarray(g["noise_levels"][:-1])
    np.testing.assert_allclose(sigma / alpha, s, rtol=1e-4)
    if process == "vp":
        np.testing.assert_allclose(alpha**2 + sigma**2, 1.0, rtol=1e-5)
    elif process == "ve":
        np.testing.assert_allclose(alpha, 1.0)
    else:
        np.testing.assert_allclose(alpha + sigma, 1.0, rtol=1e-5)


def test_card_records_metadata_and_is_strict_json(tmp_path):
    card = make_card(
        EDM(),
        num_steps=8,
        process="vp",
        solver="heun",
        objective={"objective": "gaussian-kl", "num_steps": 8},
        objective_value=np.float32(0.125),
        fingerprint={"spectrum_sha256": "abc"},
        settings={"learning_rate": 0.01},
    )
    path = save_card(tmp_path / "card.json", card)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    loaded = json.loads(text)
    assert loaded["card_version"] == CARD_VERSION
    assert loaded["schedopt_version"] == "0.1.0"
    assert loaded["objective_value"] == 0.125
    assert loaded["solver"] == "heun"
    assert loaded["endpoints"]["sigma_max"] == 80.0
    assert loaded["optimized_at"] == {"num_steps": 8, "nfe": 15, "final": "zero"}
    assert loaded == load_card(path)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_card_rebuilds_the_schedule(tmp_path, name):
    schedule = SCHEDULES[name]
    path = save_card(tmp_path / "c.json", make_card(schedule, num_steps=5))
    rebuilt = card_schedule(load_card(path))
    t = jnp.linspace(0.0, 1.0, 33)
    np.testing.assert_allclose(rebuilt.logsnr(t), schedule.logsnr(t), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("final", ["zero", "min"])
def test_regrid_equals_a_fresh_card_at_the_new_nfe(final):
    schedule = SCHEDULES["cubic"]
    card = make_card(schedule, num_steps=10, objective_value=1.5)
    new = regrid_card(card, 25, final=final)
    fresh = make_card(schedule, num_steps=25, final=final)
    assert new["grid"] == fresh["grid"]
    assert new["objective_value"] == 1.5 and new["optimized_at"]["num_steps"] == 10
    assert card["grid"]["num_steps"] == 10  # the input is not modified


def test_card_records_steps_and_true_evaluations(tmp_path):
    # a 5-step Heun card makes 9 evaluations (the last step to 0 is an Euler step)
    card = make_card(EDM(), num_steps=5, solver="heun")
    assert card["optimized_at"] == {"num_steps": 5, "nfe": 9, "final": "zero"}
    assert make_card(EDM(), num_steps=5, final="min", solver="heun")["optimized_at"]["nfe"] == 10
    assert make_card(EDM(), num_steps=5, solver={"name": "euler"})["optimized_at"]["nfe"] == 5
    assert make_card(EDM(), num_steps=5)["optimized_at"]["nfe"] is None  # no solver
    assert card_nfe("dpmpp-2m", 4) == 4 and card_nfe("no-such-solver", 4) is None
    # a card written before nfe was recorded still reads
    old = make_card(EDM(), num_steps=5, solver="heun")
    del old["optimized_at"]["nfe"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    assert load_card(path)["optimized_at"] == {"num_steps": 5, "final": "zero"}


def test_load_card_accepts_a_run_directory(tmp_path):
    save_card(tmp_path / "schedule.json", make_card(EDM(), num_steps=3))
    assert load_card(tmp_path)["grid"]["num_steps"] == 3


def test_missing_truncated_and_unknown_version_name_the_path(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_card(tmp_path / "nope.json")
    path = save_card(tmp_path / "card.json", make_card(EDM(), num_steps=3))
    full = path.read_text()
    bad = tmp_path / "truncated.json"
    bad.write_text(full[: len(full) // 2])
    with pytest.raises(ValueError, match="truncated.json.*not valid JSON"):
        load_card(bad)
    card = json.loads(full)
    card["card_version"] = 99
    (tmp_path / "v99.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="v99.json.*card_version=99"):
        load_card(tmp_path / "v99.json")
    card = json.loads(full)
    card["schedule"]["family"] = "nonsense"
    (tmp_path / "fam.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="fam.json.*nonsense"):
        load_card(tmp_path / "fam.json")
    card = json.loads(full)
    card["grid"]["t"] = card["grid"]["t"][:-1]
    (tmp_path / "short.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="short.json.*'t'"):
        load_card(tmp_path / "short.json")


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_steps=0"):
        make_card(EDM(), num_steps=0)
    with pytest.raises(ValueError, match="process='xx'"):
        make_card(EDM(), num_steps=3, process="xx")
    with pytest.raises(ValueError, match="objective_value"):
        make_card(EDM(), num_steps=3, objective_value=float("nan"))
    with pytest.raises(ValueError, match="settings"):
        make_card(EDM(), num_steps=3, settings={"x": float("inf")})
    with pytest.raises(ValueError, match="final='max'"):
        regrid_card(make_card(EDM(), num_steps=3), 4, final="max")


def test_save_card_is_atomic_and_refuses_invalid_cards(tmp_path):
    path = save_card(tmp_path / "card.json", make_card(EDM(), num_steps=3))
    before = path.read_text()
    card = json.loads(before)
    del card["grid"]
    with pytest.raises(ValueError, match="lacks the keys"):
        save_card(path, card)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def _edit(card: dict, edit) -> dict:
    card = json.loads(json.dumps(card))
    edit(card)
    return card


def _set(path, value):
    def edit(card):
        node = card
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


BAD_CARDS = [  # (edit of a valid 3-step card, fragment of the error)
    (_set(("grid", "noise_levels", 1), None), "must be a list of numbers, got None"),
    (_set(("grid", "noise_levels", 1), "2.5"), "must be a list of numbers, got '2.5'"),
    (_set(("grid", "noise_levels", 1), 90.0), "'noise_levels' must be strictly decreasing"),
    (_set(("grid", "noise_levels", 3), 0.001), "must be positive and end with 0"),
    (_set(("grid", "noise_levels", 2), -1.0), "must be positive"),
    (_set(("grid", "t", 0), 1.5), "grid 't' must lie in [0, 1]"),
    (_set(("grid", "t", 1), 1.0), "grid 't' must be strictly decreasing"),
    (_set(("grid", "logsnr", 1), 99.0), "grid 'logsnr' must be strictly increasing"),
    (_set(("grid", "alpha", 0), 0.0), "grid 'alpha' must be positive"),
    (_set(("grid", "num_steps"), True), "bad grid num_steps=True"),
    (_set(("card_version",), True), "card_version=True"),
    (_set(("endpoints", "sigma_min"), 100.0), "endpoints need 0 < sigma_min < sigma_max"),
    (_set(("objective_value",), "low"), "objective_value must be a list of numbers"),
    (_set(("schedule", "params", "rho"), -1.0), "holds a schedule that cannot be rebuilt"),
]


@pytest.mark.parametrize("edit, fragment", BAD_CARDS)
def test_bad_cards_are_refused_naming_the_file(tmp_path, edit, fragment):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_edit(make_card(EDM(), num_steps=3, objective_value=1.0), edit)))
    with pytest.raises(ValueError) as info:
        load_card(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_tokens_are_refused(tmp_path, token):
    card = make_card(EDM(), num_steps=3)
    text = json.dumps(card).replace(str(card["grid"]["noise_levels"][1]), token, 1)
    (tmp_path / "c.json").write_text(text)
    with pytest.raises(ValueError, match=f"holds {token}, which is not a finite number"):
        load_card(tmp_path / "c.json")


def test_a_grid_its_schedule_does_not_reproduce_is_refused(tmp_path):
    card = make_card(MonotoneCubic.from_schedule(EDM(), num_knots=8), num_steps=6)
    card["grid"]["noise_levels"][2] *= 1.001  # still decreasing, but not this schedule's
    (tmp_path / "c.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match=r"noise_levels\[2\] is .* 'monotone-cubic' schedule"):
        load_card(tmp_path / "c.json")
    card["grid"]["noise_levels"][2] /= 1.001
    (tmp_path / "c.json").write_text(json.dumps(card))
    assert load_card(tmp_path / "c.json")["grid"]["num_steps"] == 6
