# Sourced by demo.sh and test.sh: create or reuse .venv and install schedopt[dev,test] into it,
# plus k-diffusion's sampling code (--no-deps: see the `test` extra in pyproject.toml).
# The install is skipped when pyproject.toml is unchanged since the last one.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.schedopt-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || ! .venv/bin/python -c "import schedopt" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev,test]'
  .venv/bin/python -m pip install --quiet --no-deps 'k-diffusion==0.1.1.post1'
  touch "$stamp"
fi
