"""What the OSC bridge lets a client do: loopback and remote clients, the folders they may read and
write, and the optional shared token.

The trust model (examples/README.md says it for users): the server acts with the rights of the user
who started it. A client on this machine (a loopback address) is trusted like that user, since any
program the user runs can read their files anyway; a client on another machine is not: it may stream
audio, read only inside the folders given with ``--allow-read`` and write only inside ``--out``. A
shared token (``--token`` / ``--token-file``) makes every client, local ones included, prove it
knows the secret first: the defence on a machine shared with other users, who can reach loopback
ports too.

A path a client may not read gets one reply whatever the reason (missing, unreadable, not a file,
outside the allowed folders), so a client cannot probe which files exist.
"""
from __future__ import annotations

import functools
import hmac
import ipaddress
import os
import socket
import time
from pathlib import Path
from typing import Iterable

from ..errors import OscError

#: Wrong tokens one host may send in a burst; after that one per :data:`AUTH_REFILL_S` seconds.
AUTH_BURST = 10
AUTH_REFILL_S = 1.0


class AccessDenied(OscError):
    """A client asked for something it may not do (the message never says whether a path exists)."""


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is this machine's loopback interface only."""
    text = str(host).split("%", 1)[0].strip("[]")
    try:
        addresses = [ipaddress.ip_address(text)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                         for info in socket.getaddrinfo(text, None)]
        except (OSError, ValueError, UnicodeError):
            return False
    if not addresses:
        return False
    for ip in addresses:
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_loopback:
            return False
    return True


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse to bind anything but loopback unless ``allow_remote``.

    Raises:
        OscError: ``host`` reaches beyond this machine and remote clients were not allowed.
    """
    if not allow_remote and not is_loopback(host):
        raise OscError(f"host {host!r} would let other machines reach the OSC server; pass --allow-remote "
                       "(allow_remote=True) to do that, best with --token-file; remote clients may then "
                       "stream audio, read only inside --allow-read folders and write only inside --out "
                       "(see examples/README.md)")


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def load_token(token: str | None, token_file: "str | os.PathLike | None") -> str | None:
    """The shared token from ``token`` or the first line of ``token_file`` (not both).

    Raises:
        OscError: both given, the file cannot be read, or the token is empty or shorter than 8 characters.
    """
    if token is not None and token_file is not None:
        raise OscError("give a token or a token file, not both")
    if token_file is not None:
        try:
            text = Path(token_file).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise OscError(f"cannot read the token file {token_file}: {reason}") from None
        token = text.splitlines()[0].strip() if text.strip() else ""
    if token is None:
        return None
    if len(token) < 8:
        raise OscError("the shared token must be at least 8 characters (e.g. from `openssl rand -hex 16`)")
    return token


class AccessPolicy:
    """Paths and tokens, checked per request (see the module docstring).

    Args:
        read_dirs: folders remote clients may read (``--allow-read``); each must exist.
        write_dir: the only folder remote clients may write into (the server's ``--out``).
        token: the shared token, or None for none.
        confine_local: apply the remote-client rules to clients on this machine too (for a machine
            shared with other users).

    Raises:
        OscError: a read folder is missing or not a folder.
    """

    def __init__(self, read_dirs: Iterable["str | os.PathLike"] = (), write_dir: "str | os.PathLike" = ".",
                 token: str | None = None, confine_local: bool = False):
        roots = []
        for d in read_dirs:
            p = Path(d).expanduser()
            if not p.is_dir():
                raise OscError(f"--allow-read {d}: not a folder")
            roots.append(p.resolve())
        self.read_dirs: tuple[Path, ...] = tuple(roots)
        self.write_dir = Path(write_dir).expanduser()
        self.token = token
        self.confine_local = bool(confine_local)
        self._auth_fail: dict[str, tuple[float, float]] = {}

    # ------------------------------------------------------------------ who
    def is_remote(self, host: str) -> bool:
        """Whether a client at ``host`` gets the remote-client rules."""
        return self.confine_local or not is_loopback(host)

    # ------------------------------------------------------------------ reading
    def not_readable(self, text: str) -> AccessDenied:
        return AccessDenied(f"{text}: not found, or not a file this client may read (one answer for a "
                            "missing, unreadable or forbidden path, or one outside the folders the server allows)")

    def readable_file(self, path: Path, remote: bool) -> Path:
        """``path`` if the client may read it as a file (resolved for remote clients), else the one
        :class:`AccessDenied` every failure gets."""
        try:
            real = path.resolve(strict=True)
            ok = real.is_file() and os.access(real, os.R_OK)
        except (OSError, RuntimeError, ValueError):
            ok = False
            real = path
        if ok and remote:
            ok = any(_within(real, root) for root in self.read_dirs)
        if not ok:
            raise self.not_readable(str(path))
        return real if remote else path

    def readable_preset(self, text: str, remote: bool) -> str:
        """A preset argument: a name (returned as is) or a path, which must be a file (or a kit folder)
        the client may read; every failure is the same :class:`AccessDenied`."""
        if not looks_like_path(text):
            return text
        p = Path(text).expanduser()
        if not p.is_absolute():
            raise self.not_readable(text)
        try:
            if p.is_dir():
                self.readable_file(p / "kit.json", remote)
                return str(p.resolve() if remote else p)
        except (OSError, AccessDenied):
            raise self.not_readable(text) from None
        try:
            return str(self.readable_file(p, remote))
        except AccessDenied:
            raise self.not_readable(text) from None

    # ------------------------------------------------------------------ writing
    def writable(self, path: Path, remote: bool) -> Path:
        """``path`` if the client may write there; remote clients only inside the output folder."""
        if not remote:
            return path
        root = self.write_dir.resolve()
        if path.name in ("", ".", ".."):
            raise AccessDenied(f"{path}: clients on other machines may write only inside {root}")
        parent = path.parent.resolve()
        if not _within(parent, root):
            raise AccessDenied(f"{path}: clients on other machines may write only inside {root}")
        return parent / path.name

    # ------------------------------------------------------------------ the token
    def check_token(self, host: str, given: str) -> bool:
        """Whether ``given`` is the token; wrong guesses are limited per host.

        Raises:
            AccessDenied: this host sent too many wrong tokens lately.
        """
        now = time.monotonic()
        tokens, last = self._auth_fail.get(host, (float(AUTH_BURST), now))
        tokens = min(float(AUTH_BURST), tokens + (now - last) / AUTH_REFILL_S)
        if tokens < 1.0:
            self._auth_fail[host] = (tokens, now)
            raise AccessDenied("too many wrong tokens from this host; wait a few seconds")
        if self.token is not None and hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8")):
            return True
        if len(self._auth_fail) > 4096:
            self._auth_fail.clear()
        self._auth_fail[host] = (tokens - 1.0, now)
        return False


def looks_like_path(text: str) -> bool:
    """A preset argument that names a file or folder rather than a preset name."""
    return text.endswith(".json") or os.sep in text or bool(os.altsep and os.altsep in text) or text.startswith("~")
