"""Cached one-shots: what the synthesiser made for a (synthesiser, kit embedding, seed), kept on disk.

The one-shot synthesiser costs seconds per kit on a CPU and its output depends only on the
synthesiser's weights, the kit embedding it is given, the noise seed and the one-shot length; the
engine snaps saturated embeddings to a kit's one-hot (``Separator.snap_kit``), so a model has
``n_kits`` one-shot sets that nearly every input uses. Those are computed ahead of time:

* for the shipped default model they are package data (``idm_host/models/one-shots/``, written
  by ``python tools/make_assets.py one-shots``);
* for an imported model, ``idm-host models import`` computes them into the user cache.

Every entry is one ``.npz`` holding the one-shots (float32 ``[K, L]``), the key it was made for
and the sha256 of the one-shots' bytes. The key hashes the synthesiser's weights (not the whole
weights file: retraining the encoder with the synthesiser frozen keeps the one-shots valid), the
embedding, the seed and the length. An entry is used only when its key, shape, dtype, checksum
and finiteness all check out; anything else (a stale, truncated or NaN-filled file) is ignored and
rebuilt by the synthesiser.
"""
from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from .errors import IdmError
from .fsutil import atomic_write_bytes
from .progress import ProgressCallback

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: The one-shots shipped with the package (read-only).
SHIPPED_DIR = Path(__file__).resolve().parent / "models" / "one-shots"
SUFFIX = ".npz"
FORMAT = "idm-host-one-shots-1"


def synth_digest(model) -> str:
    """sha256 of everything the one-shots depend on inside ``model``: the synthesiser's weights
    (names, dtypes, shapes, bytes) and the sizes that shape its input."""
    cfg = model.config
    h = hashlib.sha256()
    h.update(f"{FORMAT};K={cfg.n_classes};kits={cfg.n_kits};L={cfg.one_shot_len};sr={cfg.sample_rate}".encode())
    for name, t in sorted(model.synth.state_dict().items()):
        a = t.detach().cpu().contiguous()
        h.update(f"{name}:{a.dtype}:{tuple(a.shape)};".encode())
        h.update(a.numpy().tobytes())
    return h.hexdigest()


def kit_key(digest: str, embedding: np.ndarray, seed: int, length: int) -> str:
    """The cache key of the one-shots for ``embedding`` (as the synthesiser is given it)."""
    h = hashlib.sha256()
    h.update(digest.encode())
    h.update(np.ascontiguousarray(embedding, dtype=np.float32).tobytes())
    h.update(f"seed={int(seed)};len={int(length)}".encode())
    return h.hexdigest()[:32]


def _checksum(shots: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(shots, dtype=np.float32).tobytes()).hexdigest()


def encode_entry(key: str, shots: np.ndarray) -> bytes:
    """The bytes of one cache entry."""
    shots = np.ascontiguousarray(shots, dtype=np.float32)
    buf = io.BytesIO()
    np.savez_compressed(buf, one_shots=shots, key=np.array(key), sha256=np.array(_checksum(shots)),
                        format=np.array(FORMAT))
    return buf.getvalue()


def read_entry(path: Path, key: str, shape: tuple[int, int]) -> np.ndarray | None:
    """The one-shots in ``path`` if it is a sound entry for ``key`` of ``shape``, else ``None``
    (logged: a stale or damaged entry is never used)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            shots = z["one_shots"]
            got_key, got_sum, fmt = str(z["key"]), str(z["sha256"]), str(z["format"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable one-shot cache %s: %s", path, exc)
        return None
    problem = None
    if fmt != FORMAT or got_key != key:
        problem = "made for another model, kit or seed"
    elif shots.dtype != np.float32 or shots.shape != tuple(shape):
        problem = f"shape {shots.shape} {shots.dtype}, expected {tuple(shape)} float32"
    elif not np.isfinite(shots).all():
        problem = "holds non-finite samples"
    elif _checksum(shots) != got_sum:
        problem = "checksum mismatch"
    if problem:
        log.warning("ignoring one-shot cache %s: %s", path, problem)
        return None
    return shots


class OneShotStore:
    """Where one-shots are looked up (shipped, then the user cache) and saved (the user cache)."""

    def __init__(self, cache_folder: Path | None = None, shipped_folder: Path | None = SHIPPED_DIR):
        self._cache_folder = None if cache_folder is None else Path(cache_folder)
        self.shipped_folder = None if shipped_folder is None else Path(shipped_folder)

    @property
    def cache_folder(self) -> Path:
        """The user cache's one-shot folder (``$IDM_HOST_MODELS/one-shots`` unless given)."""
        if self._cache_folder is not None:
            return self._cache_folder
        from .models import cache_dir

        return cache_dir() / "one-shots"

    def folders(self) -> list[Path]:
        return [f for f in (self.shipped_folder, self.cache_folder) if f is not None]

    def load(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        for folder in self.folders():
            shots = read_entry(folder / f"{key}{SUFFIX}", key, shape)
            if shots is not None:
                return shots
        return None

    def save(self, key: str, shots: np.ndarray, folder: Path | None = None) -> Path | None:
        """Write an entry (atomically) into the user cache, or ``folder``; a read-only cache only
        costs speed, so failures are logged, not raised."""
        path = (self.cache_folder if folder is None else Path(folder)) / f"{key}{SUFFIX}"
        try:
            return atomic_write_bytes(path, encode_entry(key, shots), overwrite=True)
        except (IdmError, OSError) as exc:
            log.warning("cannot cache one-shots at %s: %s", path, exc)
            return None


def kit_embeddings(n_kits: int) -> Iterable[np.ndarray]:
    """The embeddings a snapping engine gives the synthesiser: one one-hot per kit."""
    for i in range(n_kits):
        e = np.zeros(n_kits, dtype=np.float32)
        e[i] = 1.0
        yield e


def snap_embedding(kit_embedding: np.ndarray, threshold: float | None) -> np.ndarray:
    """``kit_embedding`` as float32, replaced by its kit's one-hot when its largest weight is at
    least ``threshold`` (``None``: never)."""
    e = np.asarray(kit_embedding, dtype=np.float32)
    if threshold is not None and e.size and float(e.max()) >= threshold:
        onehot = np.zeros_like(e)
        onehot[int(e.argmax())] = 1.0
        return onehot
    return e


def precompute(separator, *, folder: Path | None = None, progress=None) -> list[Path]:
    """Compute (or verify) the one-shots of every kit ``separator`` snaps to, into ``folder``
    (default: the user cache); returns the entries' paths."""
    from .progress import report

    n = separator.config.n_kits
    out = []
    for i, e in enumerate(kit_embeddings(n)):
        out.append(separator.cache_one_shots(e, folder=folder))
        report(progress, (i + 1) / n, f"one-shots of kit {i + 1}/{n}")
    return out


class KitSynthesis:
    """The one-shots of a kit embedding, from memory, the disk caches or the synthesiser: the kit
    half of :class:`~idm_host.engine.Separator` (a mixin; the separator sets the attributes below)."""

    model: Any
    config: Any
    device: Any
    seed: int
    snap_kit: float | None
    _kits: dict[str, np.ndarray]
    _store: OneShotStore
    _synth_digest: str | None

    @property
    def synth_digest(self) -> str:
        """sha256 of the synthesiser's weights (:func:`idm_host.kit_cache.synth_digest`)."""
        if self._synth_digest is None:
            self._synth_digest = synth_digest(self.model)
        return self._synth_digest

    def _kit_key(self, embedding: np.ndarray) -> str:
        return kit_key(self.synth_digest, embedding, self.seed, self.config.one_shot_len)

    def noise(self) -> "torch.Tensor":
        """The seeded one-shot noise ``[K, L]`` (seed 0 is the official parity file's noise)."""
        import torch

        gen = torch.Generator().manual_seed(self.seed)
        return torch.randn(self.config.n_classes, 1, self.config.one_shot_len, generator=gen)[:, 0]

    def synth_embedding(self, kit_embedding: np.ndarray) -> np.ndarray:
        """The embedding the synthesiser is given: snapped to one-hot when saturated (``snap_kit``)."""
        return snap_embedding(kit_embedding, self.snap_kit)

    def synthesize(self, kit_embedding: np.ndarray, progress: ProgressCallback | None = None) -> np.ndarray:
        """Run the synthesiser (no cache): one-shots ``[K, L]`` for the embedding exactly as given.

        ``progress`` is called after each of the synthesiser's blocks (its long steps: seconds each
        on a loaded CPU); raise :class:`~idm_host.errors.Cancelled` from it to stop."""
        import torch

        with torch.inference_mode():
            emb = torch.from_numpy(np.ascontiguousarray(kit_embedding, dtype=np.float32))[None]
            shots = self.model.synthesize(emb.to(self.device), self.noise()[None].to(self.device), progress=progress)
            return np.ascontiguousarray(shots[0].float().cpu().numpy())

    def one_shots(self, kit_embedding: np.ndarray, progress: ProgressCallback | None = None) -> np.ndarray:
        """One-shots ``[K, L]`` for a kit embedding: memory, then the shipped and the user's disk
        cache (entries checked: key, shape, checksum, finite), then the synthesiser (result cached;
        ``progress`` as :meth:`synthesize` takes it, called only when it runs)."""
        kit_embedding = self.synth_embedding(kit_embedding)
        key = self._kit_key(kit_embedding)
        shots = self._kits.get(key)
        if shots is not None:
            return shots
        shape = (self.config.n_classes, self.config.one_shot_len)
        shots = self._store.load(key, shape)
        if shots is None:
            shots = self.synthesize(kit_embedding, progress)
            self._store.save(key, shots)
        self._kits[key] = shots
        return shots

    def cache_one_shots(self, kit_embedding: np.ndarray, *, folder: Path | None = None) -> Path | None:
        """Make sure the one-shots of ``kit_embedding`` are on disk (in ``folder``, default the
        user cache) and sound; returns the entry's path (``None`` if it could not be written)."""
        e = self.synth_embedding(kit_embedding)
        key = self._kit_key(e)
        shape = (self.config.n_classes, self.config.one_shot_len)
        target = (self._store.cache_folder if folder is None else Path(folder)) / f"{key}{SUFFIX}"
        if read_entry(target, key, shape) is not None:
            return target
        shots = self.one_shots(e)
        return self._store.save(key, shots, folder=target.parent)
