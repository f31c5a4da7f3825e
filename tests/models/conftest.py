import pytest


def _train_args(out, *extra, sample_nfe: int = 3):
    """A small `schedopt train` command on the ring (20 steps, checkpoints every 10);
    ``sample_nfe=0`` skips the sample grid."""
    samples = ["--sample-nfe", str(sample_nfe)] + (["--num-samples", "16"] if sample_nfe else [])
    return [
        "train", "--dataset", "ring", "--out", str(out), "--num-train", "512", "--steps", "20",
        "--batch-size", "32", "--width", "16", "--depth", "1", "--checkpoint-every", "10",
        "--log-every", "10", *samples, "--no-progress", *extra,
    ]  # fmt: skip


@pytest.fixture
def train_args():
    """``train_args(out, *extra, sample_nfe=3)``: the argv of a small training run."""
    return _train_args
