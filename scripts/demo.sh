#!/usr/bin/env bash
# The main job on its embedded defaults: learn a 10-step Euler schedule for the digits
# spectrum by minimising the closed-form Gaussian KL, compare it with the baselines,
# write runs/demo/{schedule.json,schedule.png,log.jsonl}. Creates or reuses .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec .venv/bin/schedopt optimize --out "${SCHEDOPT_DEMO_OUT:-runs/demo}" "$@"
