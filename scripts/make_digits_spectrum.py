"""Write ``schedopt/gaussian/_assets/digits_spectrum.npz``: the digits spectra (eigenvalues
and eigenbasis mean, float64, per split) that ``Spectrum.digits`` reads, so that the
command line does not import scikit-learn. Run after changing the digits data or split:

    python scripts/make_digits_spectrum.py
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from schedopt.gaussian.spectrum import DIGITS_SPLITS, digits_spectrum_from_data
from schedopt.io.atomic import atomic_write_bytes


def main() -> Path:
    arrays = {}
    for split in DIGITS_SPLITS:
        arrays[f"{split}_eigenvalues"], arrays[f"{split}_mean"] = digits_spectrum_from_data(split)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = Path(__file__).resolve().parents[1] / "schedopt" / "gaussian" / "_assets"
    path = path / "digits_spectrum.npz"
    atomic_write_bytes(path, buffer.getvalue())
    return path


if __name__ == "__main__":
    print(main())
