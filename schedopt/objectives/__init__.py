"""Objectives: scalar losses of a schedule that the optax loop minimises."""

from .base import AbstractObjective
from .gaussian_kl import GaussianKL

__all__ = ["AbstractObjective", "GaussianKL"]
