"""The model registry: named models, where their weights live, and their checksums.

Resolution order for a name: an explicit file path; ``default`` -> the weights shipped inside the
package (``idm_host/models/default/``), else the official weights if installed; any other name ->
``$IDM_HOST_MODELS`` (else the user cache dir) ``/<name>.pt``.

The official checkpoint is converted once into the project's weight format by
:func:`install_official`, which verifies its sha256 first; :mod:`idm_host.installs` (``idm-host models
import PATH`` and ``pull``) runs it and then computes the one-shots of the model's kits.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..audio import file_sha256
from ..errors import ChecksumError, ModelError
from ..fsutil import atomic_write_text, make_dirs, make_temp_dir, remove_empty, remove_leftovers
from ..progress import ProgressCallback, report
from ..types import ModelInfo

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_DIR = PACKAGE_DIR / "default"
OFFICIAL_NAME = "idm-44-train-kits"
WEIGHTS_SUFFIX = ".pt"


@dataclass(frozen=True)
class ModelSpec:
    """A model the project knows by name."""

    name: str
    description: str
    url: Optional[str] = None
    source_sha256: Optional[str] = None


def _official_spec() -> ModelSpec:
    from ..model.checkpoints import OFFICIAL_SHA256

    return ModelSpec(
        name=OFFICIAL_NAME,
        description="Official IDM weights (Torres et al., Apache-2.0), trained on StemGMD's 6 train kits",
        url=(
            "https://github.com/bernardo-torres/inverse-drum-machine/raw/main/pretrained/"
            "idm-44-train-kits/checkpoints/val-epoch=518-global_step=0.ckpt"
        ),
        source_sha256=OFFICIAL_SHA256,
    )


def cache_dir() -> Path:
    """Where installed models live: ``$IDM_HOST_MODELS``, else the user cache dir."""
    env = os.environ.get("IDM_HOST_MODELS")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("idm-host")) / "models"


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def default_weights() -> Path | None:
    """The weights shipped inside the package, if this build has them."""
    path = DEFAULT_DIR / f"default{WEIGHTS_SUFFIX}"
    return path if path.exists() else None


def model_path(name: str = "default") -> Path:
    """The weights file for ``name`` (a registered name or a path).

    Raises:
        ModelError: nothing is installed under that name; the message says how to get it.
    """
    p = Path(name).expanduser()
    if p.suffix in (WEIGHTS_SUFFIX, ".ckpt") or os.sep in name:
        if not p.exists():
            raise ModelError(f"{p}: model file not found")
        return p
    if name == "default":
        shipped = default_weights()
        if shipped is not None:
            return shipped
        name = OFFICIAL_NAME
    path = cache_dir() / f"{name}{WEIGHTS_SUFFIX}"
    if path.exists():
        return path
    if name == OFFICIAL_NAME:
        spec = _official_spec()
        raise ModelError(
            f"model '{OFFICIAL_NAME}' is not installed; download the official checkpoint from {spec.url} "
            f"and run `idm-host models import PATH`"
        )
    raise ModelError(f"model '{name}' is not installed in {cache_dir()}; see `idm-host models list`")


def verify_sha256(path: Path) -> str:
    """Check ``path`` against the digest recorded beside it at install time; return the digest."""
    digest = file_sha256(path)
    side = _sidecar(path)
    if side.exists():
        try:
            want = json.loads(side.read_text()).get("sha256")
        except (OSError, ValueError):
            want = None
        if want and want != digest:
            raise ChecksumError(
                f"{path}: sha256 {digest[:12]}... does not match the installed {want[:12]}...; "
                "the file changed since it was installed: import it again"
            )
    return digest


def transcriber_path(transcriber: str | os.PathLike | None, model: str | os.PathLike) -> Path | None:
    """The transcription network's weights a separator of ``model`` uses, or ``None`` for the IDM head.

    ``"auto"``: the shipped network, with the default model only, *if its sidecar records a passed
    ship gate* for its own weights and calibration (no class below the official weights on any
    validation kit, recorded by ``python -m bench.bench_transcription --record-gate``);
    ``"default"``: the shipped network with any model (``None`` when this build lacks it);
    ``None``/``"none"``: the IDM head; anything else: a path.
    """
    if transcriber is None or str(transcriber) == "none":
        return None
    if str(transcriber) == "auto":
        side = DEFAULT_DIR / "transcriber.json"
        if str(model) != "default" or not side.is_file():
            return None
        from ..transcriber import gate_passed

        try:
            meta = json.loads(side.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or not gate_passed(meta):
            return None
        transcriber = "default"
    if str(transcriber) == "default":
        path = DEFAULT_DIR / "transcriber.pt"
        return path if path.is_file() else None  # a build without the shipped network uses the IDM head
    return Path(transcriber)


def velocity_network_path(transcriber: str | os.PathLike | None, model: str | os.PathLike) -> Path | None:
    """The network whose velocities the IDM head's hits take, or ``None`` (the head's own).

    Only for ``"auto"`` with the default model where :func:`transcriber_path` keeps the IDM head's
    hits (the shipped network has not passed its ship gate): the hits stay the head's, their
    velocities come on the MIDI scale from the shipped network (MODEL_CARD.md, session 10; the head's
    own run at 0.06-0.44 of the performance's, kit by kit). ``None``/``"none"`` keeps the IDM head
    whole, velocities included.
    """
    if str(transcriber) != "auto" or str(model) != "default" or transcriber_path(transcriber, model) is not None:
        return None
    return transcriber_path("default", model)


def resolve_model(model: str | os.PathLike) -> tuple[Path, str, str]:
    """``(weights file, display name, sha256)`` of a model name or path (:func:`model_path`, then
    :func:`verify_sha256`); a path's display name is its stem."""
    path = model_path(str(model))
    digest = verify_sha256(path)
    name = str(model) if not Path(str(model)).suffix else Path(str(model)).stem
    return path, name, digest


def list_models() -> list[ModelInfo]:
    """Every model this installation knows: shipped, installed, and known but not installed."""
    from ..classes import IDM_CLASSES

    out: list[ModelInfo] = []
    shipped = default_weights()
    if shipped is not None:
        meta = {}
        try:
            meta = json.loads(_sidecar(shipped).read_text())
        except (OSError, ValueError):
            pass
        out.append(ModelInfo("default", shipped, meta.get("sha256"), tuple(meta.get("classes", IDM_CLASSES)),
                             int(meta.get("sample_rate", 44100)), meta.get("description", "shipped with idm-host"),
                             True))
    seen = set()
    folder = cache_dir()
    if folder.is_dir():
        for path in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}")):
            meta = {}
            try:
                meta = json.loads(_sidecar(path).read_text())
            except (OSError, ValueError):
                pass
            seen.add(path.stem)
            out.append(ModelInfo(
                path.stem, path, meta.get("sha256"), tuple(meta.get("classes", IDM_CLASSES)),
                int(meta.get("sample_rate", 44100)), meta.get("description", ""), True,
            ))
    spec = _official_spec()
    if spec.name not in seen:
        out.append(ModelInfo(spec.name, None, spec.source_sha256, IDM_CLASSES, 44100, spec.description, False))
    return out


def install_weights(model, name: str, *, description: str, source: dict, overwrite: bool = True) -> ModelInfo:
    """Save an :class:`~idm_host.model.IDM` into the cache under ``name`` with a sha256 sidecar."""
    from ..model.checkpoints import save_weights

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}{WEIGHTS_SUFFIX}"
    save_weights(model, path, source=source, overwrite=overwrite)
    digest = file_sha256(path)
    cfg = model.config
    atomic_write_text(_sidecar(path), json.dumps({
        "name": name, "sha256": digest, "description": description, "classes": list(cfg.classes),
        "sample_rate": cfg.sample_rate, "source": source,
    }, indent=1), overwrite=True)
    return ModelInfo(name, path, digest, tuple(cfg.classes), cfg.sample_rate, description, True)


def install_official(path: str | os.PathLike, *, name: str = OFFICIAL_NAME) -> ModelInfo:
    """Verify the official checkpoint's sha256, convert it, and install it into the cache.

    :func:`idm_host.installs.import_official` does this and then computes the one-shots of its kits.

    Raises:
        ChecksumError: the file is not the official checkpoint (or is damaged).
        ModelError: the file cannot be read.
    """
    from ..model.checkpoints import OFFICIAL_SHA256, convert_official

    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelError(f"{p}: file not found; give the path of the downloaded .ckpt")
    digest = file_sha256(p)
    if digest != OFFICIAL_SHA256:
        raise ChecksumError(
            f"{p}: sha256 {digest[:16]}... is not the official idm-44-train-kits checkpoint "
            f"({OFFICIAL_SHA256[:16]}...); download it again"
        )
    model = convert_official(p)
    spec = _official_spec()
    return install_weights(model, name, description=spec.description,
                           source={"official_sha256": digest, "url": spec.url, "file": p.name})


@contextmanager
def downloaded_official(*, progress: ProgressCallback | None = None) -> Iterator[Path]:
    """Download the official checkpoint into a temporary folder in the cache (:func:`cache_dir`) and
    yield its path; the folder is removed afterwards, whatever happens, and so is the cache folder if
    this made it and it is still empty (:func:`idm_host.installs.pull_model` installs the file).

    Raises:
        ModelError: the download fails (no network, say); the message says how to install by hand.
    """
    spec = _official_spec()
    folder = cache_dir()
    created = make_dirs(folder)
    # the download lands in the cache, beside what it installs; a killed pull's folder is removed
    # by the next one (its name holds its process id, see idm_host.fsutil)
    remove_leftovers(folder / "official.ckpt")
    tmpdir = make_temp_dir(folder / "official.ckpt")
    try:
        target = tmpdir / "official.ckpt"
        try:
            with urllib.request.urlopen(spec.url, timeout=30) as resp, open(target, "wb") as f:
                total = int(resp.headers.get("Content-Length") or 0)
                done = 0
                while True:
                    block = resp.read(1 << 16)
                    if not block:
                        break
                    f.write(block)
                    done += len(block)
                    if total:
                        report(progress, done / total, "downloading")
        except OSError as exc:
            raise ModelError(
                f"cannot download {spec.url} ({exc}); download it by hand and run `idm-host models import PATH`"
            ) from exc
        yield target
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        remove_empty(created)
