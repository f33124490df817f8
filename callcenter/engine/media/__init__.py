"""The engine's media: the media clock, RTP port pool and legs, players and rooms.

Owns everything that moves audio on the asyncio loop: UDP sockets for RTP, the one 20 ms
clock, and the tickables it drives (Echo, TonePlayer, Room). Must not know SIP dialogs,
calls, queues, agents, the database or HTTP: the call code negotiates SDP and hands each
leg its `Negotiated` stream.
"""

from .clock import MediaClock, Tickable
from .errors import LegBusy, MediaEngineError, MediaSetupError, PortsExhausted
from .leg import RtpLeg
from .players import Echo, TonePlayer
from .ports import RtpPortPool
from .room import FrameSource, Room

__all__ = [
    "Echo",
    "FrameSource",
    "LegBusy",
    "MediaClock",
    "MediaEngineError",
    "MediaSetupError",
    "PortsExhausted",
    "Room",
    "RtpLeg",
    "RtpPortPool",
    "Tickable",
    "TonePlayer",
]
