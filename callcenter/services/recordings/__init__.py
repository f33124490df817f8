"""Call recordings: made while the call lasts, kept safe on disk, repaired after a crash."""

from .recorder import CallRecorder
from .service import RecordingService

__all__ = ["CallRecorder", "RecordingService"]
