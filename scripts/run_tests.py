"""Run the test suite one group per pytest process and print one combined closing line.

Each top-level entry of ``tests/`` (a folder or a ``test_*.py`` file) runs in its own
process, so the XLA state that a long single process accumulates (thousands of compiled
programs; one full single-process run here ended in a segfault inside XLA's compiler,
which the same tests did not reproduce alone) is reset between groups. Groups run
``SCHEDOPT_TEST_JOBS`` at a time (default: the number of CPU cores, at most 2; much of a
group's time is single-threaded XLA compilation), longest-running groups first; each
group's output is printed whole when it ends. Extra arguments go to every pytest call,
e.g. ``-m "not slow"``. Exit status: 0 only if every group passed (a group where the
arguments select no test counts as passed).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTS = ("passed", "failed", "errors", "skipped", "deselected")
# groups that take longest (measured), started first so that they do not finish last alone
LONG_FIRST = (
    "tests/sampling",
    "tests/objectives",
    "tests/test_doctests.py",
    "tests/schedules",
    "tests/search",
)


def groups() -> list[str]:
    tests = ROOT / "tests"
    entries = sorted(p for p in tests.iterdir() if p.is_dir() and p.name != "__pycache__")
    entries += sorted(tests.glob("test_*.py"))
    return [str(p.relative_to(ROOT)) for p in entries]


def jobs() -> int:
    value = os.environ.get("SCHEDOPT_TEST_JOBS", "")
    if value and not (value.isdigit() and int(value) >= 1):
        raise SystemExit(f"SCHEDOPT_TEST_JOBS must be a positive integer, got {value!r}")
    return int(value) if value else max(1, min(2, os.cpu_count() or 1))


def run_group(group: str, argv: list[str]) -> tuple[str, subprocess.CompletedProcess, float]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", group, *argv]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    return group, done, time.perf_counter() - started


def main(argv: list[str]) -> int:
    totals = dict.fromkeys(COUNTS, 0)
    failed_groups = []
    started = time.perf_counter()
    order = sorted(groups(), key=lambda g: (g not in LONG_FIRST, g))
    with ThreadPoolExecutor(jobs()) as pool:
        futures = [pool.submit(run_group, group, argv) for group in order]
        for future in as_completed(futures):
            group, done, seconds = future.result()
            print(f"\n=== {group} ({seconds:.0f} s)", flush=True)
            sys.stdout.write(done.stdout[-4000:] if done.returncode in (0, 5) else done.stdout)
            sys.stderr.write(done.stderr[-2000:])
            summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
            for name in COUNTS:
                key = "error" if name == "errors" else name
                match = re.search(rf"(\d+) {key}", summary)
                totals[name] += int(match.group(1)) if match else 0
            if done.returncode not in (0, 5):  # 5: nothing selected in this group
                failed_groups.append(f"{group} (exit {done.returncode})")
    minutes = (time.perf_counter() - started) / 60
    if failed_groups:
        print(f"\nfailed groups: {', '.join(failed_groups)}")
    print(f"\n{minutes:.1f} minutes over {len(order)} groups, {jobs()} at a time")
    print(
        f"{totals['passed']} passed, {totals['failed'] + totals['errors']} failed, "
        f"{totals['skipped']} skipped"
    )
    return 1 if failed_groups else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
