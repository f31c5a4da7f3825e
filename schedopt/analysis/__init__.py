"""The score / discretisation / initialisation error decomposition of VE samplers on
Gaussian-mixture targets with exact scores, and a controlled score-error model (Wang, He &
Tao, "Evaluating the design space of diffusion-based generative models").

Song et al.'s geometric VE schedule is :class:`schedopt.schedules.LogSNRLinear` and EDM's
polynomial one :class:`schedopt.schedules.EDM`; the samplers are
:class:`schedopt.sampling.ODESampler` and ``EulerMaruyama(..., process="ve")``.
The command line is ``schedopt analyze``.
"""

from .decomposition import TERMS, ErrorDecomposition, decompose_error, decompose_errors
from .score_error import PROFILES, PerturbedDenoiser, denoiser_error, error_profile

__all__ = [
    "PROFILES",
    "TERMS",
    "ErrorDecomposition",
    "PerturbedDenoiser",
    "decompose_error",
    "decompose_errors",
    "denoiser_error",
    "error_profile",
]
