"""Packaging shim: everything else is in pyproject.toml. The top-level ``presets/`` folder stays the
source of truth and is carried into a wheel as the package ``idm_host._presets`` (see
:func:`idm_host.presets.shipped_dir`), which pyproject's package discovery cannot express."""
from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).resolve().parent
KINDS = sorted(d.name for d in (HERE / "presets").iterdir() if d.is_dir())  # fx, kits, drum_maps
PRESETS = ["idm_host._presets"] + [f"idm_host._presets.{k}" for k in KINDS]

setup(
    packages=find_namespace_packages(include=["idm_host*", "gui*"]) + PRESETS,
    package_dir={"idm_host._presets": "presets"},
)
