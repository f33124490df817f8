"""Voicemail: messages left by callers, stored as recordings attached to a box (issue 4).

`VoicemailService.record` takes a message on an answered call (the IVR's `voicemail` node, a
queue's overflow, or `VoicemailApplication` for a number mapped to `voicemail:BOX`): greeting,
beep, the caller's words until '#', the maximum or a hang-up, goodbye. `recorder` is the media
clock's side (frames into a WAV file, written off the loop); the file itself is a mono
`callcenter.services.audiofiles.WavFileWriter`, re-exported here.
"""

from callcenter.services.audiofiles import ClosedWav, WavFileWriter

from .application import VoicemailApplication
from .recorder import MessageRecorder
from .service import VoicemailRecord, VoicemailService, check_box, is_box
from .session import Phase, VoicemailSession

__all__ = [
    "ClosedWav",
    "MessageRecorder",
    "Phase",
    "VoicemailApplication",
    "VoicemailRecord",
    "VoicemailService",
    "VoicemailSession",
    "WavFileWriter",
    "check_box",
    "is_box",
]
