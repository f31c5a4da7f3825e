"""Kill an optimisation mid-run, resume it, and get exactly the uninterrupted result."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from schedopt.io.checkpoint import load_schedule

JOB = Path(__file__).with_name("resume_job.py")


def run_job(out, *extra):
    subprocess.run([sys.executable, str(JOB), str(out), *extra], check=True, timeout=300)


def complete_steps(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    run_job(tmp_path / "plain")  # no checkpointing, different chunk boundaries

    ckpt = tmp_path / "resumed" / "checkpoints"
    proc = subprocess.Popen(
        [sys.executable, str(JOB), str(tmp_path / "resumed"), "--checkpoint-dir", str(ckpt)]
        + ["--sleep", "0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(s >= 15 for s in complete_steps(ckpt)):
        assert proc.poll() is None, "the job ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = max(complete_steps(ckpt))
    assert 15 <= killed_at < 40, complete_steps(ckpt)
    assert not (tmp_path / "resumed" / "schedule").exists()

    # another seed: the key stored in the checkpoint must win
    run_job(tmp_path / "resumed", "--checkpoint-dir", str(ckpt), "--seed", "7")

    plain = load_schedule(tmp_path / "plain" / "schedule")
    resumed = load_schedule(tmp_path / "resumed" / "schedule")
    np.testing.assert_array_equal(np.asarray(resumed.logits), np.asarray(plain.logits))
    np.testing.assert_array_equal(
        np.load(tmp_path / "resumed" / "losses.npy"), np.load(tmp_path / "plain" / "losses.npy")
    )
    assert complete_steps(ckpt)[-1] == 40
