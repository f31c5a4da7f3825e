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


@pytest.mark.slow
def test_bench_quick_all_sections(capsys):
    record = _run(capsys, ["--quick", "--sizes", "100", "--steps", "4", "--iterations", "4"])
    assert set(bench.SECTIONS) <= set(record)
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
