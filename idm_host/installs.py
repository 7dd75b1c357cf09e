"""Installing models: the official checkpoint imported (``idm-host models import PATH``) or downloaded
(``idm-host models pull``) into the registry, then the one-shots of every kit it snaps to computed
ahead of time, so that no analysis with it waits for the synthesiser (:mod:`idm_host.kit_cache`).

The registry (:mod:`idm_host.models`) verifies, converts, downloads and installs; computing
one-shots needs a :class:`~idm_host.engine.Separator`, so it lives here, above the engine.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelError
from .models import OFFICIAL_NAME, downloaded_official, install_official
from .progress import ProgressCallback
from .types import ModelInfo


def precompute_one_shots(name: str, *, progress: ProgressCallback | None = None) -> list[Path]:
    """Synthesise (or verify) the one-shots of every kit model ``name`` snaps to into the user
    cache, so that no analysis with it ever waits for the synthesiser (see :mod:`idm_host.kit_cache`)."""
    from .engine import Separator
    from .kit_cache import precompute

    paths = precompute(Separator(name, device="cpu"), progress=progress)
    return [p for p in paths if p is not None]


def import_official(path: str | os.PathLike, *, name: str = OFFICIAL_NAME, precompute: bool = True,
                    progress: ProgressCallback | None = None) -> ModelInfo:
    """Verify the official checkpoint's sha256, convert it, and install it into the cache
    (:func:`idm_host.models.install_official`).

    With ``precompute`` (the default) the one-shots of its kits are synthesised too (about 6 s per
    kit on a 2-core CPU, once), so the first analysis is as fast as the second.

    Raises:
        ChecksumError: the file is not the official checkpoint (or is damaged).
        ModelError: the file cannot be read.
    """
    info = install_official(path, name=name)
    if precompute:
        precompute_one_shots(name, progress=progress)
    return info


def pull_model(name: str = OFFICIAL_NAME, *, progress: ProgressCallback | None = None) -> ModelInfo:
    """Download a registered model over the network, verify its sha256, and install it (with its
    one-shots, as :func:`import_official`).

    Nothing is left behind on failure. Raises :class:`ModelError` without a network.
    """
    if name != OFFICIAL_NAME:
        raise ModelError(f"no download is known for model '{name}'")
    with downloaded_official(progress=progress) as target:
        return import_official(target, name=name)
