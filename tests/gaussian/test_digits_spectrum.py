"""The digits spectrum read from package data equals the one computed from the images
(that reading it imports no scikit-learn is checked in tests/cli/test_cli_cache.py)."""

import numpy as np
import pytest

from schedopt.data import load_digits
from schedopt.gaussian import Spectrum
from schedopt.gaussian.spectrum import DIGITS_SPLITS, _digits_asset, digits_spectrum_from_data


@pytest.mark.parametrize("split", DIGITS_SPLITS)
def test_packaged_digits_spectrum_equals_the_one_computed_from_the_images(split):
    values, mean = digits_spectrum_from_data(split)
    packaged = _digits_asset()
    np.testing.assert_allclose(packaged[f"{split}_eigenvalues"], values, rtol=1e-10, atol=0)
    # eigenvectors are defined up to sign: the mean in the eigenbasis up to sign per entry
    np.testing.assert_allclose(
        np.abs(packaged[f"{split}_mean"]), np.abs(mean), rtol=1e-8, atol=1e-12
    )
    images, _ = load_digits(split)
    computed = Spectrum.from_data(images.reshape(images.shape[0], -1))
    read = Spectrum.digits(split)
    np.testing.assert_array_equal(read.eigenvalues, computed.eigenvalues)
    np.testing.assert_allclose(np.abs(read.mean), np.abs(computed.mean), rtol=1e-6, atol=1e-7)
    assert read.dim == computed.dim == (61 if split == "all" else read.dim)


def test_digits_split_is_checked():
    with pytest.raises(ValueError, match="split"):
        Spectrum.digits("validation")
