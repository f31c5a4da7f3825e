"""Constant-rate scheduling (Okada et al., Constant Rate Scheduling): discrepancy measures,
speeds, and the schedules that change the diffused distribution at a constant rate, for
sampling and for training.

>>> import jax.numpy as jnp
>>> from schedopt.constant_rate import GaussianFrechet, constant_rate_schedule
>>> schedule = constant_rate_schedule(GaussianFrechet(jnp.array([0.1, 1.0, 4.0])))
>>> schedule.family
'monotone-cubic'
"""

from .._deprecated import deprecated_getattr
from .features import NNXFeatureMap, digits_feature_map
from .measures import (
    FRECHET_METHODS,
    INPUTS,
    AbstractMeasure,
    AbstractSampleMeasure,
    Combined,
    GaussianFrechet,
    SampleFrechet,
    combine,
    sample_bank,
    sigmoid_difference,
    vp_scales,
)
from .predictions import AbstractPredictionMeasure, DataPrediction, NoisePrediction
from .speed import (
    MIN_SHARE,
    SCHEDULE_FAMILIES,
    VARIABLES,
    Speed,
    check_xi,
    constant_rate_schedule,
    logsnr_grid,
    speed_variable,
    step_costs,
    tabulate_speed,
    variable_steps,
)

# Renamed: `Frechet` is the sample-versus-data objective of schedopt.objectives.
__getattr__ = deprecated_getattr(__name__, globals(), {"Frechet": "SampleFrechet"})

__all__ = [
    "FRECHET_METHODS",
    "INPUTS",
    "MIN_SHARE",
    "SCHEDULE_FAMILIES",
    "VARIABLES",
    "AbstractMeasure",
    "AbstractPredictionMeasure",
    "AbstractSampleMeasure",
    "Combined",
    "DataPrediction",
    "GaussianFrechet",
    "NNXFeatureMap",
    "NoisePrediction",
    "SampleFrechet",
    "Speed",
    "check_xi",
    "combine",
    "constant_rate_schedule",
    "digits_feature_map",
    "logsnr_grid",
    "sample_bank",
    "sigmoid_difference",
    "speed_variable",
    "step_costs",
    "tabulate_speed",
    "variable_steps",
    "vp_scales",
]
