"""``schedopt bench --sections noise_learning_step``: what learning the training noise
costs per training step of the digits U-Net."""

from __future__ import annotations


def noise_learning_step(timed, quick: bool, repeats: int) -> dict:
    """Median seconds of a short training run (``steps`` steps of batch 64 on digits, the
    default U-Net; ``quick``: a small one) with each noise learner, and its ratio to the
    run with a fixed noise distribution, all in this process.

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
    times = {}
    for learner in (None, *LEARNERS):

        def run(learner=learner):
            model = build_network(config, seed=0)
            result = train_denoiser(
                model, data, num_steps=steps, batch_size=64, learn_noise=learner,
                progress=False, log_every=steps,
            )  # fmt: skip
            return result.history[-1]["loss"]

        times[learner or "none"] = timed(run, repeats)
    base = times["none"]["median_s"]
    out["runs"] = times
    out["ratio_to_none"] = {k: v["median_s"] / base for k, v in times.items() if k != "none"}
    out["seconds_per_step"] = {k: v["median_s"] / steps for k, v in times.items()}
    return out
