"""Errors of the engine's media layer (RTP sockets, legs, players and rooms).

Owns only the exception types; must not know anything else.
"""

from __future__ import annotations


class MediaEngineError(Exception):
    """Base of every error raised by `callcenter.engine.media`."""


class PortsExhausted(MediaEngineError, OSError):
    """No free even port in the RTP range (every one is ours or taken by another process)."""


class MediaSetupError(MediaEngineError, ValueError):
    """A negotiated stream the leg cannot carry (unknown codec, wrong address family)."""


class LegBusy(MediaEngineError):
    """The leg already belongs to another player or room."""


class PromptError(MediaEngineError):
    """An audio file that cannot be played: missing, unreadable, too large or not a WAV this
    engine decodes. The message names the file; `path` is it as given."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)  # both in args, so the error pickles
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"
