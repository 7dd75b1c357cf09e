"""The files the editor offers and accepts: audio (the engine's list of suffixes) for open dialogs and drops."""
from __future__ import annotations

from idm_host.audio import AUDIO_SUFFIXES

#: A Qt file-dialog filter for the audio files idm-host reads.
AUDIO_FILTER = f"Audio files ({' '.join('*' + s for s in AUDIO_SUFFIXES)});;All files (*)"

__all__ = ["AUDIO_FILTER", "AUDIO_SUFFIXES"]
