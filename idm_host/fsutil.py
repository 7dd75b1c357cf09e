"""Safe file system writes: atomic files, temporary folders, folder locks and leftover clean-up.

What this module promises (docs/RELIABILITY.md, "Files and sessions"):

* **Atomic files.** :func:`atomic_file` writes a temporary file beside the target and renames it
  into place: a crash at any moment leaves the old file or the new one, never half a file.
* **Normal permissions.** Temporary files and folders get what a plain ``open()``/``mkdir()``
  would give under the user's umask, not the 0600/0700 of raw ``mkstemp``/``mkdtemp``, so what is
  renamed into place has the permissions of any file the user writes.
* **Named temporaries.** Every temporary beside a target ``T`` is named ``.T.idm-<pid>-<random>``
  plus ``.part`` (a file) or ``.partial`` (a folder), so its target and its owner's process id can
  be read from its name.
* **Locks.** :class:`FolderLock` holds ``.T.idm-lock`` beside ``T`` with ``flock``: a second
  writer of ``T`` fails at once with :class:`~idm_host.errors.BusyError`; the kernel drops the lock
  when its owner dies, however it dies.
* **Leftovers.** :func:`remove_leftovers` removes the temporaries of ``T`` whose owner is gone
  (its process no longer exists, or the caller holds ``T``'s lock, which no live writer of ``T``
  could hold at the same time). Links are never followed: a link is removed as a link.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import BinaryIO, Iterator, Union

from .errors import BusyError, IdmError

PathLike = Union[str, os.PathLike]

#: Suffixes of temporary files and folders (see the module docstring).
TEMP_FILE_SUFFIX = ".part"
TEMP_DIR_SUFFIX = ".partial"
LOCK_SUFFIX = ".idm-lock"
_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.idm-(?P<pid>\d+)-[^/]*?(\.part|\.partial)$")


def _umask() -> int:
    try:  # thread-safe: Linux reports it without changing it
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def os_error_text(exc: OSError) -> str:
    """A short reason for an OS error (``No space left on device``), never a traceback."""
    if exc.errno == errno.EFBIG:
        return "file too large (disk quota or file size limit)"
    return exc.strerror or str(exc)


def temp_prefix(path: Path) -> str:
    return f".{path.name}.idm-{os.getpid()}-"


def make_temp(path: Path, suffix: str = TEMP_FILE_SUFFIX) -> str:
    """A temporary file beside ``path`` with the permissions a plain ``open()`` would give."""
    if not suffix.endswith(TEMP_FILE_SUFFIX):
        suffix += TEMP_FILE_SUFFIX
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


def make_temp_dir(path: Path) -> Path:
    """A temporary folder beside ``path`` (for building ``path`` whole, then renaming it into place),
    with the permissions a plain ``mkdir()`` would give."""
    tmp = tempfile.mkdtemp(prefix=temp_prefix(path), suffix=TEMP_DIR_SUFFIX, dir=path.parent)
    os.chmod(tmp, 0o777 & ~_umask())
    return Path(tmp)


def make_dirs(path: Path) -> list[Path]:
    """``mkdir -p path``; returns the folders it created, outermost first (see :func:`remove_empty`).

    Raises:
        IdmError: a part of the path is a file, or a folder cannot be created.
    """
    missing: list[Path] = []
    p = Path(path)
    while not p.exists() and not p.is_symlink():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if p.exists() and not p.is_dir():
        raise IdmError(f"{p}: is a file, not a folder; choose another output folder")
    created: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise IdmError(f"{d}: is a file, not a folder; choose another output folder") from None
            continue
        except OSError as exc:
            remove_empty(created)
            raise IdmError(f"{d}: cannot create the folder ({os_error_text(exc)})") from exc
        created.append(d)
    return created


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders :func:`make_dirs` created (innermost first), as far as they are empty."""
    for d in reversed(folders):
        try:
            d.rmdir()
        except OSError:
            break


def remove_path(path: Path) -> None:
    """Remove a file, a link (the link only) or a folder tree (links inside removed as links)."""
    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
    except FileNotFoundError:
        pass


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(target: Path, *, locked: bool = False) -> list[Path]:
    """Remove the temporaries beside ``target`` that a run that is gone left (see the module docstring).

    Args:
        locked: the caller holds ``target``'s :class:`FolderLock`, so every temporary of ``target``
            (whatever its process id says) belongs to a run that is over.

    Returns:
        what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP_RE.match(e.name)
        if not m or m.group("target") != target.name:
            continue
        if not locked and pid_alive(int(m.group("pid"))):
            continue
        try:
            remove_path(Path(e.path))
            removed.append(Path(e.path))
        except OSError:
            pass
    return removed


def sweep_folder(folder: Path) -> list[Path]:
    """:func:`remove_leftovers` for every target in ``folder`` whose temporaries' owners are gone
    and that nobody has locked; stale lock files are removed too."""
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    targets = set()
    for n in names:
        m = _TEMP_RE.match(n)
        if m:
            targets.add(m.group("target"))
        elif n.startswith(".") and n.endswith(LOCK_SUFFIX):
            targets.add(n[1:-len(LOCK_SUFFIX)])
    for t in sorted(targets):
        try:
            with FolderLock(folder / t):
                removed += remove_leftovers(folder / t, locked=True)
        except IdmError:  # busy or not writable: not ours to clean
            continue
    return removed


class FolderLock:
    """An exclusive lock on writing ``target`` (a folder or a file), held in ``.NAME.idm-lock`` beside it.

    ``with FolderLock(target):`` fails at once with :class:`~idm_host.errors.BusyError` naming the
    process that holds it. The lock file is removed when the lock is released; after a kill -9 it
    stays behind, unlocked, until the next writer (or :func:`sweep_folder`) takes and removes it.
    """

    def __init__(self, target: PathLike, *, what: str = "writing"):
        self.target = Path(target)
        self.path = self.target.parent / f".{self.target.name}{LOCK_SUFFIX}"
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise IdmError(f"{self.path}: is a link; remove it (idm-host never follows links here)") from exc
                raise IdmError(f"{self.target.parent}: cannot write here ({os_error_text(exc)}); "
                               "check the folder's permissions or choose another") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = self._holder(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    who = f" (process {holder})" if holder else ""
                    raise BusyError(f"{self.target}: another idm-host run{who} is {self.what} it; "
                                    "wait for it to finish or choose another output") from None
                raise IdmError(f"{self.path}: cannot lock ({os_error_text(exc)})") from exc
            try:
                try:
                    same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:  # released and removed by its owner between our open and our flock
                    os.close(fd)
                    continue
                self._fd = fd
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except BaseException:  # e.g. SIGTERM right now: hand the lock back, file and all
                if self._fd is not None:
                    self.release()
                else:
                    os.close(fd)
                raise
            return self
        raise BusyError(f"{self.target}: the lock {self.path} keeps changing hands; try again")

    @staticmethod
    def _holder(fd: int) -> int | None:
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else None
        except OSError:
            return None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextmanager
def atomic_file(path: PathLike, *, overwrite: bool = False, suffix: str = TEMP_FILE_SUFFIX,
                clean: bool = True) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` at once.

    On any error the temporary file is removed and ``path`` is left as it was. OS errors become
    :class:`IdmError` naming the file. A link at ``path`` is replaced, never written through.
    With ``clean``, temporaries of ``path`` that killed writers left are removed first (this lists
    the folder: writers of many files into one folder pass ``False`` and sweep it once instead).

    Raises:
        IdmError: ``path`` exists and ``overwrite`` is false, or the write failed.
    """
    p = Path(path)
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise IdmError(f"{p}: already exists; choose another name or allow overwriting")
    if p.is_dir() and not p.is_symlink():
        raise IdmError(f"{p}: is a folder; choose a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if clean:
            remove_leftovers(p)
        tmp = make_temp(p, suffix)
    except OSError as exc:
        raise IdmError(f"{p}: cannot write ({os_error_text(exc)})") from exc
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
            raise IdmError(f"{p}: cannot write ({os_error_text(exc)})") from exc
        raise


def atomic_write_bytes(path: PathLike, data: bytes, *, overwrite: bool = False, clean: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, overwrite=overwrite, clean=clean) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, *, overwrite: bool = False, clean: bool = True) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite, clean=clean)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (renames, new files) durable; errors are ignored (not every FS can)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
