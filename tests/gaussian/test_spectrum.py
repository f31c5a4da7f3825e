"""Spectrum validation: what a covariance spectrum cannot be."""

import numpy as np
import pytest

from schedopt.gaussian import Spectrum, gaussian_kl, sigma_grid


@pytest.mark.parametrize(
    "eigenvalues, match",
    [
        ([], "at least one eigenvalue, got none"),  # used to give KL 0
        (np.array([1 + 1j, 2.0]), "must be real, got complex values"),  # used to keep the real part
        ([1.0, np.nan], "finite"),
        ([1.0, 0.0], "> 0"),
        ([[1.0, 2.0]], "1-D"),
    ],
)
def test_impossible_spectra_are_refused(eigenvalues, match):
    with pytest.raises(ValueError, match=match):
        Spectrum(eigenvalues)


def test_complex_mean_and_weights_are_refused_too():
    with pytest.raises(ValueError, match="`mean` must be real"):
        Spectrum([1.0], mean=np.array([1j]))
    with pytest.raises(ValueError, match="`weights` must be real"):
        Spectrum([1.0], weights=np.array([1 + 0j]))


def test_a_valid_spectrum_still_gives_its_kl():
    kl = gaussian_kl(Spectrum([0.5, 2.0]), sigma_grid([10.0, 1.0, 0.0]))
    assert float(kl) > 0
