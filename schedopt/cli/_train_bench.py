"""``schedopt bench --sections noise_learning_step``: what learning the training noise
costs per training step of the digits U-Net."""

from __future__ import annotations

import statistics
import time


def noise_learning_step(quick: bool, repeats: int) -> dict:
    """Median seconds of a short training run (``steps`` steps of batch 64 on digits, the
    default U-Net; ``quick``: a small one) with each noise learner, and its ratio to the
    run with a fixed noise distribution, all in this process, the repeats interleaved.

    Every run is one call of :func:`schedopt.models.train_denoiser`; equal settings share
    one compiled step, so the first call of each learner is its compilation.
    """
    from ..data import load_dataset
    from ..models.networks import build_network, default_network_config
    from ..models.noise_learning import LEARNERS
    from ..models.training import train_denoiser

    data = load_dataset("digits").train
    config = default_network_config(data.shape[1:], 0.7522)
    if quick:
        config.update(channels=[8, 16], embed_dim=16)
    steps = 5 if quick else 20
    out = {"steps": steps, "batch_size": 64, "network": config}
    runs = {}
    for learner in (None, *LEARNERS):

        def run(learner=learner):
            model = build_network(config, seed=0)
            result = train_denoiser(
                model, data, num_steps=steps, batch_size=64, learn_noise=learner,
                progress=False, log_every=steps,
            )  # fmt: skip
            return result.history[-1]["loss"]

        runs[learner or "none"] = run
    times = interleaved(runs, repeats)
    base = times["none"]["median_s"]
    out["runs"] = times
    out["ratio_to_none"] = {k: v["median_s"] / base for k, v in times.items() if k != "none"}
    out["seconds_per_step"] = {k: v["median_s"] / steps for k, v in times.items()}
    return out


def interleaved(runs: dict, repeats: int) -> dict:
    """``{"compile_s", "median_s", "runs"}`` of each ``runs[name]()``, its repeats taken in
    turn with the others' (one of each, ``repeats`` times), so that a change of the
    machine's load falls on every one alike.

    >>> sorted(interleaved({"a": lambda: 1}, 2)["a"])
    ['compile_s', 'median_s', 'runs']
    """
    first = {}
    for name, fn in runs.items():
        start = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - start
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out = {}
    for name, values in times.items():
        median = statistics.median(values)
        out[name] = {"compile_s": max(first[name] - median, 0.0), "median_s": median,
                     "runs": repeats}  # fmt: skip
    return out
