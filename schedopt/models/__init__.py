"""Denoisers: the ``AbstractDenoiser`` interface, exact oracles and Flax networks."""

from .base import AbstractDenoiser

__all__ = ["AbstractDenoiser"]
