"""Helpers shared by the subcommands: parsing lists and spectra, printing tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..gaussian.spectrum import Spectrum


def parse_floats(name: str, text: str) -> list[float]:
    """``"80,1.5,0"`` to floats; errors name the option and the bad item."""
    out = []
    for item in text.split(","):
        item = item.strip()
        try:
            out.append(float(item))
        except ValueError:
            raise ValueError(f"--{name} must be comma-separated numbers, got {item!r}") from None
    return out


SPECTRUM_HELP = (
    "data spectrum: 'digits' (scikit-learn's 8x8 digits in [-1, 1]), "
    "'power-law:DIM[:EXPONENT]', or a .npy file of eigenvalues"
)


def parse_spectrum(spec: str | None, eigenvalues: str | None = None) -> Spectrum:
    """A spectrum from ``--eigenvalues a,b,c`` or ``--spectrum NAME`` (see ``SPECTRUM_HELP``)."""
    if eigenvalues is not None:
        return Spectrum(np.asarray(parse_floats("eigenvalues", eigenvalues)))
    spec = spec or "digits"
    if spec == "digits":
        return Spectrum.digits()
    if spec.startswith("power-law:"):
        parts = spec.split(":")[1:]
        try:
            dim = int(parts[0])
            exponent = float(parts[1]) if len(parts) > 1 else 1.0
        except (ValueError, IndexError):
            raise ValueError(f"--spectrum power-law needs DIM[:EXPONENT], got {spec!r}") from None
        return Spectrum.power_law(dim, exponent)
    path = Path(spec)
    if path.suffix == ".npy":
        if not path.is_file():
            raise ValueError(f"--spectrum file not found: {spec!r}")
        return Spectrum(np.load(path))
    raise ValueError(f"unknown --spectrum {spec!r}; {SPECTRUM_HELP}")


def format_table(header: list[str], rows: list[list]) -> str:
    """A plain fixed-width text table."""
    cells = [[str(h) for h in header]] + [
        [f"{v:.6g}" if isinstance(v, float) else str(v) for v in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def dataset_denoiser(dataset, network: str | None, option: str):
    """The denoiser an objective needs: the saved network at ``network`` (a
    ``schedopt train`` network directory) if given, else the data set's exact oracle.

    ``option`` names the command-line flag in the error for data without a known density.
    """
    if network is not None:
        from ..models.nnx_adapter import load_denoiser

        return load_denoiser(network)
    if dataset.distribution is None:
        raise ValueError(
            f"{dataset.name!r} has no exact oracle (no known density): give {option} "
            "(a saved network directory, e.g. runs/digits-edm/network)"
        )
    from ..models.oracles import GaussianMixtureDenoiser

    return GaussianMixtureDenoiser.from_mixture(dataset.distribution)
