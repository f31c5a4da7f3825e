"""Feature maps for the model-free measure: NNX modules as equinox feature maps, and the
digits classifier's features (schedopt's Inception analogue for 8x8 digits)."""

import equinox as eqx
from jaxtyping import Array


class NNXFeatureMap(eqx.Module):
    """A Flax NNX module's method as an equinox feature map (jit-able, a pytree).

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> fm = NNXFeatureMap.from_module(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), method="__call__")
    >>> fm(jnp.ones((4, 3))).shape
    (4, 2)
    """

    graphdef: object = eqx.field(static=True)
    state: object
    method: str = eqx.field(static=True, default="features")
    name: str = eqx.field(static=True, default="nnx")

    @classmethod
    def from_module(cls, module, method: str = "features", name: str = "nnx") -> "NNXFeatureMap":
        from flax import nnx

        graphdef, state = nnx.split(module)
        return cls(graphdef, state, method, name)

    def __call__(self, x: Array) -> Array:
        from flax import nnx

        module = nnx.merge(self.graphdef, self.state)
        return getattr(module, self.method)(x)


def digits_feature_map() -> NNXFeatureMap:
    """The digits classifier's 64 features (schedopt's Inception analogue for 8x8 digits);
    input images ``(n, 8, 8, 1)`` in ``[-1, 1]``."""
    from ..metrics.classifier import load_classifier

    return NNXFeatureMap.from_module(load_classifier(), "features", "digits-classifier")
