"""Data files that installed packages ship (models, gazetteers), found without importing them."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path


class MissingPackageData(RuntimeError):
    """A package, or a file it should have installed, is not there; the message says how to
    install it."""


def installed_file(package: str, relative: str) -> Path:
    """The path of ``relative`` in the files installed by the PyPI ``package``."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as e:
        raise MissingPackageData(
            f"the Python package {package!r} is not installed: pip install {package}"
        ) from e
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise MissingPackageData(
            f"{relative} is missing from the installed package {package!r} "
            f"{dist.version}: reinstall it (pip install --force-reinstall {package})"
        )
    return path
