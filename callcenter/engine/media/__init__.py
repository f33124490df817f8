"""The engine's media: the media clock, RTP port pool and legs, browser legs, players, rooms.

Owns everything that moves audio on the asyncio loop: UDP sockets for RTP, agent pages' audio
frames (`BrowserLeg`, sans-socket: the web layer owns the WebSocket), the `Leg` protocol that
rooms and players drive, the one 20 ms clock, and the tickables it drives (Echo, TonePlayer,
PromptPlayer, MusicPlayer, Room), and prompts and music read from WAV files (`PromptCache`,
`load_music`). Must not know SIP dialogs,
calls, queues, agents, the database or HTTP: the call code negotiates SDP and hands each
leg its `Negotiated` stream.
"""

from .browser_leg import BrowserLeg
from .clock import MediaClock, Tickable
from .errors import LegBusy, MediaEngineError, MediaSetupError, PortsExhausted, PromptError
from .leg import RtpLeg
from .legs import Leg
from .players import Echo, MusicPlayer, PromptPlayer, TonePlayer, music_extension
from .ports import RtpPortPool
from .prompts import (
    LoopingSource,
    Prompt,
    PromptCache,
    PromptSource,
    default_hold_music_path,
    load_music,
    read_prompt,
)
from .room import FrameSource, Room

__all__ = [
    "BrowserLeg",
    "Echo",
    "FrameSource",
    "Leg",
    "LegBusy",
    "LoopingSource",
    "MediaClock",
    "MediaEngineError",
    "MediaSetupError",
    "MusicPlayer",
    "PortsExhausted",
    "Prompt",
    "PromptCache",
    "PromptError",
    "PromptPlayer",
    "PromptSource",
    "Room",
    "RtpLeg",
    "RtpPortPool",
    "Tickable",
    "TonePlayer",
    "default_hold_music_path",
    "load_music",
    "music_extension",
    "read_prompt",
]
