"""The digits example runs end to end and its NNX sampler agrees with schedopt's."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from schedopt.io import make_card, save_card
from schedopt.schedules import EDM, MonotoneCubic

EXAMPLE = Path(__file__).parents[2] / "examples" / "sample_digits_with_schedule.py"


@pytest.mark.slow
def test_digits_example_with_a_card(tmp_path):
    schedule = MonotoneCubic.from_schedule(EDM(), num_knots=8)
    save_card(tmp_path / "run" / "schedule.json", make_card(schedule, num_steps=6))
    out = tmp_path / "samples.png"
    argv = ["--schedule", str(tmp_path / "run"), "--train-steps", "20", "--nfe", "4"]
    argv += ["--num-samples", "4", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *argv], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    difference = float(re.search(r"diffrax Euler\| = (\S+)", proc.stdout).group(1))
    assert difference < 1e-4
    assert out.stat().st_size > 0
