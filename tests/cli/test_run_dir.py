"""The run directory of ``schedopt optimize``: resume checks, failures that leave it as it
was, stale temporaries, unreadable checkpoints, cut logs, and the float64 flag."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from schedopt.cli import main
from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid
from schedopt.io.card import load_card

COMMON = ["optimize", "--eigenvalues", "0.3,1,2", "--num-steps", "4", "--num-knots", "6"]
COMMON += ["--no-progress"]


def optimize(out, *extra) -> int:
    return main([*COMMON, "--out", str(out), *extra])


def snapshot(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_resume_refuses_changed_settings_and_data_naming_each(tmp_path, capsys):
    out, spectrum = tmp_path / "run", tmp_path / "spectrum.npy"
    np.save(spectrum, np.array([0.3, 1.0, 2.0]))
    argv = ["optimize", "--spectrum", str(spectrum), *COMMON[3:], "--out", str(out)]
    assert main([*argv, "--iterations", "20", "--checkpoint-every", "10", "--resume"]) == 0
    before = snapshot(out)
    capsys.readouterr()
    # the example: more iterations is fine, but --num-steps 5 and --lr 0.02 are not
    assert main([*argv, "--iterations", "30", "--resume", "--num-steps", "5", "--lr", "0.02"]) == 2
    err = capsys.readouterr().err
    assert "holds a run made with other settings" in err
    assert "--num-steps 4 there, 5 here" in err and "--lr 0.01 there, 0.02 here" in err
    assert snapshot(out) == before and load_card(out)["grid"]["num_steps"] == 4
    assert main([*argv, "--resume", "--seed", "3"]) == 2
    assert "--seed 0 there, 3 here" in capsys.readouterr().err
    other = ["optimize", "--eigenvalues", "1,2", "--resume", "--out", str(out)]
    assert main(other) == 2  # another spectrum; the rest is the checkpoint's
    assert "--eigenvalues None there, '1,2' here" in capsys.readouterr().err
    np.save(spectrum, np.array([0.3, 1.0, 3.0]))  # the same options, other data
    assert main([*argv, "--resume", "--iterations", "30"]) == 2
    assert "the data of this run differ from those of" in capsys.readouterr().err
    assert snapshot(out) == before


def test_resume_takes_the_checkpoints_settings_skips_unreadable_steps_and_cut_logs(
    tmp_path, capsys
):
    out, straight = tmp_path / "run", tmp_path / "straight"
    assert optimize(out, "--iterations", "30", "--checkpoint-every", "10", "--resume") == 0
    for path in (out / "checkpoints" / "30").rglob("*"):
        if path.is_file() and path.parent.name == "d":  # its array data, truncated
            path.write_bytes(path.read_bytes()[:8])
    with open(out / "log.jsonl", "a") as f:
        f.write('{"step": 30, "lo')  # a last line cut by a kill
    capsys.readouterr()
    # nothing but --resume and --out: every setting (iterations too) from the checkpoint
    assert main(["optimize", "--resume", "--no-progress", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "continuing the run checkpointed in" in err and "Traceback" not in err
    assert "warning: resumed from step 20" in err and "renamed unreadable-30" in err
    assert (out / "checkpoints" / "unreadable-30").is_dir()
    assert optimize(straight, "--iterations", "30") == 0
    resumed, plain = load_card(out), load_card(straight)
    assert resumed["schedule"] == plain["schedule"]
    assert resumed["settings"]["num_steps"] == 4 and resumed["settings"]["iterations"] == 30
    lines = (out / "log.jsonl").read_text().splitlines()
    assert lines == (straight / "log.jsonl").read_text().splitlines() and len(lines) == 30


def test_a_failed_run_leaves_the_directory_as_it_was(tmp_path, capsys):
    out = tmp_path / "run"
    assert optimize(out, "--iterations", "20") == 0
    before = snapshot(out)
    # diverges: refused after the run, and nothing of it stays
    assert optimize(out, "--iterations", "20", "--lr", "1e6") == 1
    assert "the learned schedule is worse than the one it started from" in capsys.readouterr().err
    assert snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["log.jsonl", "schedule.json", "schedule.png"]


def test_stale_temporaries_of_killed_runs_are_removed(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = 2**22 + 12345  # above the default pid_max: no such process
    stale = [
        out / f".incomplete.{dead}.abc123.tmpdir",  # the staging folder of a killed run
        out / f".schedule.json.{dead}.x7y.tmp",  # a killed atomic write
        out / ".log.jsonl.oldstyle.tmp",  # written by an older schedopt (no pid)
    ]
    stale[0].mkdir()
    (stale[0] / "log.jsonl").write_text('{"step": 0, "loss": 1.0}\n')
    for path in stale[1:]:
        path.write_text("partial")
    (out / "exports").mkdir()
    export_tmp = out / "exports" / f".k-diffusion-steps9.json.{dead}.q1.tmp"
    export_tmp.write_text("partial")
    live = out / "exports" / f".k-diffusion-steps9.json.{os.getpid()}.q2.tmp"
    live.write_text("being written")  # a live writer's: kept
    assert optimize(out, "--iterations", "5") == 0
    assert not any(p.exists() for p in [*stale, export_tmp]) and live.exists()
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert hidden == []  # no staging folder, no lock file left


def test_x64_flag_computes_in_float64_and_is_scoped(capsys):
    argv = ["kl", "--sigmas", "80,1,0", "--eigenvalues", "1e-8", "--json"]
    assert main([*argv, "--x64"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["dtype"] == "float64"
    with jax.enable_x64(True):  # the API in float64
        expected = gaussian_kl(Spectrum([1e-8]), sigma_grid([80.0, 1.0, 0.0]))
        assert expected.dtype == jnp.float64
    np.testing.assert_allclose(record["kl"], float(expected), rtol=1e-12)
    assert 4.9e7 < record["kl"] < 5.1e7  # the figure
    # float32 (NaN in the log-form chain before the rational one) now agrees
    assert main(argv) == 0
    record32 = json.loads(capsys.readouterr().out)
    assert record32["dtype"] == "float32"
    np.testing.assert_allclose(record32["kl"], float(expected), rtol=1e-5)
    assert jnp.zeros(1).dtype == jnp.float32  # switched back for the caller
    assert main([*argv, "--x6"]) == 2  # an abbreviation would come too late
    assert "write --x64 in full" in capsys.readouterr().err


@pytest.mark.slow
def test_errors_are_one_line_without_tracebacks(tmp_path):
    """Through the console entry point, where orbax's event loop used to print a second
    traceback after a clear error."""
    import subprocess
    import sys

    out = tmp_path / "run"
    assert optimize(out, "--iterations", "10", "--checkpoint-every", "5", "--resume") == 0
    cmd = [sys.executable, "-m", "schedopt.cli", *COMMON, "--num-steps", "5", "--resume"]
    done = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("schedopt optimize: error: --resume:"), lines


def test_orbax_closed_event_loop_noise_is_dropped_and_nothing_else(capsys):
    import sys
    import types

    assert main(["kl", "--sigmas", "2,0", "--eigenvalues", "1"]) == 0
    seen = []
    hook = sys.unraisablehook
    hook.previous, previous = seen.append, hook.previous
    try:
        for message in ("Event loop is closed", "something else"):
            error = RuntimeError(message)
            hook(types.SimpleNamespace(exc_type=RuntimeError, exc_value=error, object=None))
    finally:
        hook.previous = previous
    assert [str(u.exc_value) for u in seen] == ["something else"]


def test_resume_reads_the_steps_an_older_checkpoint_recorded_as_nfe(tmp_path, monkeypatch):
    # checkpoints written before --num-steps recorded the steps under "nfe"
    import types

    from schedopt.cli import build_parser, explicit_options
    from schedopt.cli import optimize as cli_optimize
    from schedopt.io import checkpoint

    def parse(*argv):
        parser = build_parser("optimize", ["optimize", *argv])
        args = parser.parse_args(["optimize", *argv])
        args.given = explicit_options(parser.subcommands["optimize"], list(argv), args)
        return args

    old = cli_optimize.shaping_options(parse("--eigenvalues", "0.3,1,2", "--num-steps", "4"))
    old["nfe"] = old.pop("num_steps")
    info = types.SimpleNamespace(
        step=3, settings={"options": old}, info={"num_iterations": 10}, every=100
    )
    monkeypatch.setattr(checkpoint, "checkpoint_info", lambda path: info)
    args = parse("--resume")
    assert cli_optimize.adopt_checkpoint_settings(args, tmp_path) is info
    assert args.num_steps == 4 and args.eigenvalues == "0.3,1,2"
