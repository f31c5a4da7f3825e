#!/bin/bash
# Wall time of the default job (`schedopt optimize --no-progress`) of an older checkout
# beside this one's, interleaved in the same minutes: the old one as it runs, this one
# with an empty compilation cache (first) and reading it (cached).
#   scripts/compare_default_job.sh OLD_CHECKOUT [RUNS]
# e.g. git worktree add /tmp/before 6db2a19 && scripts/compare_default_job.sh /tmp/before 3
set -euo pipefail
old=$(cd "$1" && pwd); runs=${2:-3}
new=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$new/.venv/bin/python}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
wall() { local s; s=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc; }
for i in $(seq "$runs"); do
  rm -rf "$tmp/cache"
  before=$(cd "$tmp" && PYTHONPATH=$old wall "$python" -m schedopt.cli optimize --no-progress --out "$tmp/old")
  first=$(cd "$tmp" && PYTHONPATH=$new SCHEDOPT_COMPILE_CACHE=$tmp/cache wall "$python" -m schedopt.cli optimize --no-progress --out "$tmp/new")
  cached=$(cd "$tmp" && PYTHONPATH=$new SCHEDOPT_COMPILE_CACHE=$tmp/cache wall "$python" -m schedopt.cli optimize --no-progress --out "$tmp/new")
  echo "old $before  first $first  cached $cached  load $(cut -d' ' -f1 /proc/loadavg)"
done
