"""Objectives: scalar losses of a schedule that the optax loop minimises."""

from .base import AbstractObjective

__all__ = ["AbstractObjective"]
