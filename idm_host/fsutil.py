"""Atomic file writes: a crash at any moment leaves the old file or the new one, never half a file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import BinaryIO, Iterator, Union

from .errors import IdmError

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_temp(path: Path, suffix: str = ".part") -> str:
    """A temporary file beside ``path`` with the permissions a plain ``open()`` would give."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


@contextmanager
def atomic_file(path: PathLike, *, overwrite: bool = False, suffix: str = ".part") -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` at once.

    On any error the temporary file is removed and ``path`` is left as it was. OS errors become
    :class:`IdmError` naming the file.

    Raises:
        IdmError: ``path`` exists and ``overwrite`` is false, or the write failed.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise IdmError(f"{p}: already exists; choose another name or allow overwriting")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp(p, suffix)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise IdmError(f"{p}: cannot write ({exc.strerror or exc})") from exc
        raise


def atomic_write_bytes(path: PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, overwrite=overwrite) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, *, overwrite: bool = False) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)
