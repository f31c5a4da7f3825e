import json

import pytest

from schedopt.cli import bench


def _run(capsys, argv):
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    bench.register(sub)
    args = parser.parse_args(["bench", *argv])
    assert args.func(args) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_kl_scaling_prints_json_with_medians(capsys, tmp_path):
    out = tmp_path / "b.json"
    argv = ["--quick", "--sections", "kl_scaling", "--sizes", "100,400", "--steps", "4"]
    record = _run(capsys, [*argv, "--repeats", "2", "--output", str(out)])
    rows = record["kl_scaling"]["by_size"]
    assert [r["dim"] for r in rows] == [100, 400]
    for r in rows:
        assert r["value"]["median_s"] > 0 and r["value_and_grad"]["compile_s"] >= 0
        assert r["grad_over_value"] > 0
    assert json.loads(out.read_text()) == record


def test_schedule_timing_runs_the_full_fit_after_a_compiling_run():
    calls = []
    timing = bench.schedule_timing(lambda its: calls.append(its) or 0.0, 5, 2)
    assert calls == [5, 5, 5]  # the first (compiling) run, then the timed repeats
    assert timing["iterations"] == 5 and timing["runs"] == 2
    assert timing["per_iteration_s"] == pytest.approx(timing["median_s"] / 5)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--sections", "nope"], "--sections"),
        (["--sizes", "a,b"], "--sizes"),
        (["--steps", "0"], "--steps"),
    ],
)
def test_bench_bad_arguments_name_the_flag(capsys, argv, match):
    with pytest.raises(ValueError, match=match):
        _run(capsys, argv)


def test_default_job_times_fresh_processes(tmp_path):
    # `true` stands in for the interpreter: the plumbing, not the job
    record = bench.default_job(2, ("--iterations", "3"), python="true")
    assert record["command"].endswith("--iterations 3")
    for name in ("first", "cached", "no_cache", "imports"):
        assert record[f"{name}_s"] > 0 and len(record["runs"][name]) == 2
    assert record["cached_over_first"] > 0


@pytest.mark.slow
def test_bench_kl_speed_and_accuracy_quick(capsys):
    argv = ["--quick", "--sections", "kl_speed,kl_accuracy", "--kl-dim", "256", "--repeats", "1"]
    record = _run(capsys, argv)
    euler = record["kl_speed"]["euler"]
    assert euler["num_steps"] == 50 and record["kl_speed"]["dim"] == 256
    for form in ("schedopt", "arctan_form", "previous_form", "memory_pass"):
        assert euler[form]["median_s"] > 0, form
    assert all(v > 0 for v in euler["ratios"].values())
    row = record["kl_accuracy"]["by_solver"]["euler"]
    assert row["resolvable"]["schedopt"]["max"] < 1e-5 and row["near_zero"]["cases"] > 0


#: Sections with a test of their own below (they are the slow ones).
OWN_TESTS = (
    "few_step_gradients",
    "digits_time_to_schedule",
    "torch_bridge",
    "sharding",
    "default_job",
    "kl_speed",
    "kl_accuracy",
    "noise_learning_step",
)


@pytest.mark.slow
def test_bench_quick_all_sections(capsys):
    rest = [s for s in bench.SECTIONS if s not in OWN_TESTS]
    argv = ["--quick", "--sizes", "100", "--steps", "4", "--iterations", "4"]
    record = _run(capsys, [*argv, "--sections", ",".join([*rest, "sharding"])])
    assert set(rest) <= set(record)
    timings = record["time_to_schedule"]
    assert timings["gaussian-kl"]["median_s"] > 0
    objectives = ("trajectory-matching", "mmd", "sliced-w2", "frechet")
    objectives += ("constant-rate-direct", "constant-rate-objective", "score-work-table")
    for name in (*objectives, "score-work-objective"):
        timing = timings[f"{name}(ring)"]
        assert timing["median_s"] > 0 and timing["compile_s"] >= 0, name
    assert "skipped" in record["sharding"]  # one CPU device in this process
    assert record["sampler_overhead"].get("ratio_diffrax_over_hand", 1.0) > 0


@pytest.mark.slow
def test_bench_sharding_on_two_fake_devices(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = tmp_path / "s.json"
    argv = ["bench", "--quick", "--sections", "sharding", "--repeats", "1", "--output", str(out)]
    code = "import sys; from schedopt.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    record = json.loads(out.read_text())["sharding"]
    assert record["devices"] == 2 and record["speedup"] > 0
    assert record["sharded"]["median_s"] > 0 and record["single_device"]["median_s"] > 0


def test_bench_few_step_gradients_compares_with_the_hand_unrolled_loop(capsys):
    record = _run(capsys, ["--quick", "--sections", "few_step_gradients", "--repeats", "1"])
    section = record["few_step_gradients"]
    for solver in ("euler", "heun", "dpmpp-2m"):
        row = section[solver]
        assert row["agree"], solver  # the same value and gradient as the reference loop
        assert row["nfe"] <= 5 and row["ratio"] > 0
        assert row["schedopt"]["median_s"] > 0 and row["reference"]["median_s"] > 0


def test_reference_loops_match_the_samplers():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from schedopt.cli._few_step import SOLVERS, reference_sampler
    from schedopt.models import GaussianDenoiser
    from schedopt.sampling import dpmpp_2m_sde, probability_flow

    with jax.enable_x64(True):
        den = GaussianDenoiser(jnp.array([0.1, 1.0]))
        levels = jnp.asarray(np.geomspace(80.0, 0.01, 6))
        y0 = 80.0 * jax.random.normal(jax.random.key(0), (3, 2))
        xi = jax.random.normal(jax.random.key(1), (5, 3, 2))
        for solver in SOLVERS:
            if solver == "dpmpp-2m-sde":
                ours = dpmpp_2m_sde(den, levels, y0, xi)
            else:
                ours = probability_flow(den, levels, y0, solver=solver)
            reference = reference_sampler(solver, den, levels, y0, xi)
            np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12, err_msg=solver)


def test_bench_digits_time_to_schedule(capsys):
    record = _run(capsys, ["--quick", "--sections", "digits_time_to_schedule", "--repeats", "1"])
    section = record["digits_time_to_schedule"]
    assert section["teacher_pairs"]["num_pairs"] == 16
    for name in ("trajectory", "sliced-w2"):
        assert section[name]["median_s"] > 0


@pytest.mark.slow
def test_bench_torch_bridge_against_torch_alone(capsys):
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    record = _run(capsys, ["--quick", "--sections", "torch_bridge", "--repeats", "1"])
    bridge = record["torch_bridge"]
    assert bridge["agree"] and bridge["ratio"] > 0
    assert bridge["schedopt_median_s"] > 0 and bridge["torch_median_s"] > 0


@pytest.mark.slow
def test_bench_noise_learning_step_times_every_learner_against_fixed_noise(capsys):
    from schedopt.models.noise_learning import LEARNERS

    record = _run(capsys, ["--quick", "--sections", "noise_learning_step", "--repeats", "1"])
    section = record["noise_learning_step"]
    assert set(section["ratio_to_none"]) == set(LEARNERS)
    assert all(r > 0 for r in section["ratio_to_none"].values())
    assert section["seconds_per_step"]["none"] > 0 and section["steps"] == 5
