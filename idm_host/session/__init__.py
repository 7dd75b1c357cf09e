"""The session: the document a user edits (hits, kit, mixer, effects, tempo) with undo and redo.

A :class:`Session` is made from an :class:`~idm_host.types.Analysis` (or loaded from a
``NAME.idmsession/`` folder). Every edit is a small command object passed to :meth:`Session.apply`;
:meth:`Session.undo` and :meth:`Session.redo` restore the exact state before and after it. Observers
registered with :meth:`Session.subscribe` receive a :class:`Change` naming what changed (the part:
``"hits"``, ``"kit"``, ``"mixer"``, ``"tempo"``, ``"stems"`` or ``"source"``, and the classes).

:attr:`Session.modified` follows one rule: a session straight from :meth:`Session.from_analysis`,
just loaded or just saved is not modified; any applied, undone or redone command makes it modified,
except that undoing or redoing back to the exact snapshot last saved (or loaded, or analysed) makes
it unmodified again. :meth:`Session.relink` also marks it modified (until the next save).

State is immutable: :attr:`Session.hits` maps class symbols to tuples of frozen :class:`SessionHit`,
:attr:`Session.kit` to :class:`KitSlot`, :attr:`Session.mixer` to :class:`ChannelStrip`. Each hit has
an id that stays the same across moves, velocity changes, undo, redo, save and load, so a GUI can
keep a selection.

The package: :mod:`.parts` (the immutable values), :mod:`.commands` (the undoable edits),
:mod:`.document` (:class:`Session`: state, history, observers), :mod:`.persistence` (the folder on
disk) and :mod:`.schema` (``session.json``'s versions and the migrations between them). Every public
name is imported from here: ``from idm_host.session import Session, AddHits``.

On disk (``schema_version`` 2)::

    NAME.idmsession/
        session.json              the document (hits, kit settings, mixer, tempo, source path+sha256)
        extracted/<CLS>-<hash>.wav   the model's own (synthetic) one-shots (float32)
        kit/<CLS>-<hash>.wav         user samples in use (float32, at the session rate, mono)
        kit/<CLS>-fitted-<hash>.wav  one-shots fitted to the record (``kit.<CLS>.fitted_file``; the
                                     synthetic one beside it is ``synthetic_file``, in extracted/)
        stems/<CLS>-<hash>.flac      the separated stems and residual (24-bit), if kept

Saving is atomic: a new folder is written under a temporary name and renamed into place; an existing
session gets its new files (content-addressed names, so unchanged stems are not rewritten) before
``session.json`` is replaced with one ``os.replace``, and files no longer referenced are removed
after that. A kill at any moment leaves the old session or the new one. A file of an older schema is
migrated as it is loaded and saved in the current one; a newer one is refused. Version 2 added the
fitted one-shots (kit origin ``"fitted"``, ``fitted_file`` and ``synthetic_file``); a version-1 file
has none.

What a save never does: follow a link (a session whose ``stems/``, ``kit/`` or ``extracted/`` is a
link, or that is itself a link, is refused: Save As makes a copy with real folders), delete or
change anything outside the session folder, or run beside another save of the same folder (a lock,
``.NAME.idmsession.idm-lock`` beside it, makes the second fail at once). Temporaries a killed save
left are removed by the next save. Stems are stored as 24-bit FLAC through one exact mapping of
samples to 24-bit integers, so a stem that was loaded and not edited keeps its name and is not
rewritten, and encoding what was decoded gives the same bytes. Every file ``session.json`` names
must lie inside the folder (no absolute paths, no ``..``, no link out of it).

Example:
    >>> s = Session.from_analysis(analysis, source="loop.wav")      # doctest: +SKIP
    >>> change = s.apply(AddHits("SD", [(1.5, 0.8)]))                # doctest: +SKIP
    >>> s.apply(MoveHits(change.hit_ids, delta_s=0.01)); s.undo()     # doctest: +SKIP
    >>> s.save("loop.idmsession")                                   # doctest: +SKIP
"""
from .commands import (AddHits, Command, Compound, DeleteHits, MoveHits, Quantize, ReplaceSample, RevertSample,
                       SetEffects, SetFittedKit, SetKitParams, SetMixer, SetStems, SetTempo, SetVelocity, UseFitted)
from .document import Session
from .parts import (BLEND_MODES, MASTER, RESIDUAL, VELOCITY_CURVES, Change, ChannelStrip, KitSlot, SessionHit,
                    SessionState, SourceInfo)
from .schema import SESSION_SCHEMA_VERSION

# also importable from here, as before the package was split (not in __all__)
from .document import MAX_UNDO as MAX_UNDO, Observer as Observer
from .parts import MAX_ONE_SHOT_S as MAX_ONE_SHOT_S, PathLike as PathLike, SESSION_SUFFIX as SESSION_SUFFIX
from .persistence import FULL_SCALE_24 as FULL_SCALE_24, PARTS as PARTS

__all__ = [
    "Session", "SessionHit", "KitSlot", "ChannelStrip", "SourceInfo", "SessionState", "Change", "Command",
    "AddHits", "DeleteHits", "MoveHits", "SetVelocity", "Quantize", "ReplaceSample", "RevertSample",
    "SetKitParams", "SetMixer", "SetEffects", "SetTempo", "SetStems", "UseFitted", "SetFittedKit", "Compound", "MASTER", "RESIDUAL",
    "SESSION_SCHEMA_VERSION", "VELOCITY_CURVES", "BLEND_MODES",
]
