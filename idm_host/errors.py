"""Exception types raised by idm_host's public API.

Every public entry point raises an :class:`IdmError` subclass with a message a musician can act on:
the file, the problem and the fix.
"""
from __future__ import annotations


class IdmError(Exception):
    """Base class of every error idm_host raises on purpose."""


class AudioError(IdmError):
    """An audio file could not be read or written (missing, empty, corrupt, unsupported)."""


class ModelError(IdmError):
    """A model could not be found, loaded or converted."""


class ChecksumError(ModelError):
    """A model file's sha256 does not match the expected digest."""


class SessionError(IdmError):
    """A session could not be created, edited, saved or loaded."""


class SchemaTooNewError(SessionError):
    """A session or preset file was written by a newer idm-host than this one."""


class PresetError(IdmError):
    """An effect chain, drum map or kit preset is invalid."""


class PresetTooNewError(PresetError, SchemaTooNewError):
    """A preset written by a newer idm-host (both a PresetError and a SchemaTooNewError)."""


class MidiError(IdmError):
    """A MIDI file or port could not be read, written or opened."""


class OscError(IdmError):
    """An OSC request was malformed or could not be served."""


class Cancelled(IdmError):
    """Raised from a progress callback to stop a long job; nothing partial is written."""


class BusyError(IdmError):
    """Another idm-host run is writing the same output or session right now (see :class:`~idm_host.fsutil.FolderLock`)."""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (once the CLI installs its handler), so that clean-up
    runs as for Ctrl-C; the CLI exits with 143."""
