"""The command line's persistent compilation cache, and what a run imports."""

import json
import os
import subprocess
import sys

import pytest

from schedopt.cli import build_parser, command_names, main
from schedopt.cli._cache import ENV, compile_cache_dir, user_cache_dir

KL = ["kl", "--sigmas", "80,10,1,0.1,0", "--eigenvalues", "0.5,1,2", "--json"]
# Counts the persistent cache's hits and misses of one `schedopt` run (jax.monitoring).
RUN = """
import json, sys
import jax.monitoring
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
from schedopt.cli import main
code = main(sys.argv[1:])
print(json.dumps({
    "code": code,
    "hits": events.count("/jax/compilation_cache/cache_hits"),
    "misses": events.count("/jax/compilation_cache/cache_misses"),
}))
"""


def _run(argv, cache):
    env = dict(os.environ, **{ENV: str(cache)})
    done = subprocess.run(
        [sys.executable, "-c", RUN, *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_run_reads_every_program_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    first = _run(KL, cache)
    assert first["code"] == 0 and first["misses"] > 0 and first["hits"] == 0
    assert any(cache.iterdir())
    second = _run(KL, cache)
    assert second["misses"] == 0 and second["hits"] == first["misses"]


def test_no_compile_cache_turns_it_off(tmp_path, monkeypatch, capsys):
    import jax

    cache = tmp_path / "cache"
    monkeypatch.setenv(ENV, str(cache))
    assert main([*KL, "--no-compile-cache"]) == 0
    assert not cache.exists() and not jax.config.jax_enable_compilation_cache
    assert json.loads(capsys.readouterr().out)["num_steps"] == 4


@pytest.mark.parametrize(
    "environ, platform, expected",
    [
        ({"XDG_CACHE_HOME": "/x"}, "linux", "/x/schedopt/jax"),
        ({"LOCALAPPDATA": "C:/u"}, "win32", "C:/u/schedopt/jax"),
    ],
)
def test_user_cache_dir(environ, platform, expected):
    assert user_cache_dir(environ, platform).as_posix() == expected


@pytest.mark.parametrize("value", ["off", "0", "false", "No", "none", ""])
def test_cache_off_values(value):
    assert compile_cache_dir(environ={ENV: value}) is None


def test_cache_dir_default_and_override():
    assert compile_cache_dir(environ={}) == user_cache_dir({})
    assert compile_cache_dir(environ={ENV: "/tmp/c"}).as_posix() == "/tmp/c"
    assert compile_cache_dir(disabled=True, environ={ENV: "/tmp/c"}) is None


def test_every_command_takes_no_compile_cache():
    parser = build_parser()
    for name in command_names():
        action = parser._subparsers._group_actions[0].choices[name]
        assert "--no-compile-cache" in action.format_help(), name


def test_optimize_imports_neither_the_sample_based_stack_nor_scikit_learn():
    code = (
        "import sys; from schedopt.cli import build_parser; build_parser('optimize'); "
        "from schedopt.gaussian import Spectrum; Spectrum.digits(); "
        "import schedopt.plot, schedopt.io.card, schedopt.optimize; "
        "heavy = ('sklearn', 'diffrax', 'flax', 'orbax', 'optimistix', 'matplotlib.pyplot'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_plugin_choices_match_the_library():
    from schedopt.cli import optimize
    from schedopt.cli._objectives import constant_rate, score_work
    from schedopt.constant_rate import VARIABLES
    from schedopt.sampling import NOISES
    from schedopt.score_optimal import COSTS, TRACES, VELOCITIES

    assert constant_rate.VARIABLES == VARIABLES and optimize.NOISES == NOISES
    assert (score_work.COSTS, score_work.TRACES, score_work.VELOCITIES) == (
        COSTS,
        TRACES,
        VELOCITIES,
    )
