"""A small digits classifier whose features define an FID-like distance for 8x8 digits.

The network (two convolutions, a 64-unit feature layer, 10 logits) is trained
deterministically on the fixed digits train split (Adam, 40 epochs, seed 0). It is stored
as an orbax checkpoint in the package (``_assets/digits_classifier``) and, when that is
missing, rebuilt on first use into ``$SCHEDOPT_CACHE`` (default ``~/.cache/schedopt``).
Features are the 64 activations before the logits; their Fréchet distance between
generated and test images is the "FD" reported for digits models.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from ..data.digits import IMAGE_SHAPE, load_digits

FEATURE_DIM = 64
VERSION = 1
_ASSET_DIR = Path(__file__).parent / "_assets" / "digits_classifier"


class DigitsClassifier(nnx.Module):
    """``(n, 8, 8, 1)`` images in ``[-1, 1]`` to 10 logits; :meth:`features` gives 64 features.

    >>> net = DigitsClassifier(rngs=nnx.Rngs(0))
    >>> net(jnp.zeros((2, 8, 8, 1))).shape, net.features(jnp.zeros((2, 8, 8, 1))).shape
    ((2, 10), (2, 64))
    """

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 32, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, (3, 3), strides=(2, 2), rngs=rngs)
        self.dense = nnx.Linear(4 * 4 * 64, FEATURE_DIM, rngs=rngs)
        self.head = nnx.Linear(FEATURE_DIM, 10, rngs=rngs)

    def features(self, x: Float[Array, "n 8 8 1"]) -> Float[Array, "n 64"]:
        h = nnx.silu(self.conv1(x))
        h = nnx.silu(self.conv2(h))
        return nnx.silu(self.dense(h.reshape(h.shape[0], -1)))

    def __call__(self, x: Float[Array, "n 8 8 1"]) -> Float[Array, "n 10"]:
        return self.head(self.features(x))


def train_classifier(seed: int = 0, num_epochs: int = 40, batch_size: int = 64) -> DigitsClassifier:
    """Train :class:`DigitsClassifier` on the digits train split, deterministically."""
    x, y = load_digits("train")
    x, y = jnp.asarray(x), jnp.asarray(y)
    model = DigitsClassifier(rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)
    optimizer = optax.adamw(1e-3, weight_decay=1e-4)
    opt_state = optimizer.init(params)
    steps_per_epoch = x.shape[0] // batch_size

    def loss_fn(params, xb, yb):
        logits = nnx.merge(graphdef, params)(xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def epoch(carry, key):
        def step(carry, idx):
            params, opt_state = carry
            grads = jax.grad(loss_fn)(params, x[idx], y[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        perm = jax.random.permutation(key, x.shape[0])[: steps_per_epoch * batch_size]
        carry, _ = jax.lax.scan(step, carry, perm.reshape(steps_per_epoch, batch_size))
        return carry

    carry = (params, opt_state)
    for key in jax.random.split(jax.random.key(seed), num_epochs):
        carry = epoch(carry, key)
    return nnx.merge(graphdef, carry[0])


def _cache_dir() -> Path:
    root = os.environ.get("SCHEDOPT_CACHE") or Path.home() / ".cache" / "schedopt"
    return Path(root) / f"digits_classifier-v{VERSION}"


def save_classifier(path: str | os.PathLike, model: DigitsClassifier) -> Path:
    """Save ``model`` as an orbax checkpoint directory (written whole or not at all)."""
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, nnx.state(model), force=True)
        checkpointer.wait_until_finished()
    return path


def _restore(path: Path) -> DigitsClassifier:
    import orbax.checkpoint as ocp

    abstract = nnx.eval_shape(lambda: DigitsClassifier(rngs=nnx.Rngs(0)))
    graphdef, abstract_state = nnx.split(abstract)
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            state = checkpointer.restore(path, abstract_state)
    except Exception as e:
        raise ValueError(
            f"cannot restore the digits classifier from {path} ({type(e).__name__}: "
            f"{str(e)[:200]}); delete it to rebuild"
        ) from None
    return nnx.merge(graphdef, state)


@functools.lru_cache(maxsize=1)
def load_classifier() -> DigitsClassifier:
    """The packaged classifier; trained and cached on first use if the package lacks it.

    Built in a worker thread: JAX's and Flax's trace state is per thread, so a first use
    inside a trace (``digits_features`` in a jitted objective) still restores concrete
    parameters instead of failing on tracers."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_load_or_train).result()


def _load_or_train() -> DigitsClassifier:
    for path in (_ASSET_DIR, _cache_dir()):
        if path.exists():
            return _restore(path)
    model = train_classifier()
    save_classifier(_cache_dir(), model)
    return model


@functools.partial(jax.jit, static_argnames=("output",))
def _apply(graphdef, state, x, output):
    model = nnx.merge(graphdef, state)
    return model.features(x) if output == "features" else model(x)


def _features(model: DigitsClassifier, x: Array) -> Array:
    # applied functionally (split, then merged inside the jit), so that it can be called
    # inside any trace without mutating the cached module
    return _apply(*nnx.split(model), x, "features")


def _logits(model: DigitsClassifier, x: Array) -> Array:
    return _apply(*nnx.split(model), x, "logits")


def _check_images(images: ArrayLike) -> Array:
    x = jnp.asarray(images, jnp.float32)
    if x.ndim == 2 and x.shape[1] == 64:
        x = x.reshape(-1, *IMAGE_SHAPE)
    if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"`images` must have shape (n, 8, 8, 1) or (n, 64), got {x.shape}")
    return x


def digits_features(images: ArrayLike) -> Float[Array, "n 64"]:
    """The classifier's 64 features of ``images`` (``(n, 8, 8, 1)`` or ``(n, 64)``, in [-1, 1])."""
    return _features(load_classifier(), _check_images(images))


def digits_logits(images: ArrayLike) -> Float[Array, "n 10"]:
    """The classifier's logits of ``images``."""
    return _logits(load_classifier(), _check_images(images))


def classifier_accuracy() -> float:
    """Accuracy of the classifier on the held-out digits test split."""
    x, y = load_digits("test")
    return float(np.mean(np.argmax(np.asarray(digits_logits(x)), axis=1) == y))


def classifier_scores(images: ArrayLike, confident: float = 0.9) -> dict[str, float]:
    """How digit-like images are, by the classifier.

    ``mean_confidence`` (mean max class probability), ``confident_fraction`` (share with
    max probability above ``confident``) and ``class_entropy`` (entropy of the predicted
    label histogram; ``log 10 = 2.303`` when all classes are equally frequent).

    >>> x, _ = load_digits("test")
    >>> classifier_scores(x)["confident_fraction"] > 0.9
    True
    """
    probs = np.asarray(jax.nn.softmax(digits_logits(images), axis=-1))
    top = probs.max(axis=1)
    hist = np.bincount(probs.argmax(axis=1), minlength=10) / probs.shape[0]
    nz = hist[hist > 0]
    return {
        "mean_confidence": float(top.mean()),
        "confident_fraction": float(np.mean(top > confident)),
        "class_entropy": float(-(nz * np.log(nz)).sum()),
    }
