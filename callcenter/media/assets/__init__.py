"""Audio shipped with the package: the built-in music on hold.

Owns only the names of the files here; reading them is the engine's job (`engine.media.
prompts`). `hold-music.wav` is made by `make_hold_music.py` in this folder, deterministically,
so it can be rebuilt and checked rather than trusted: nothing here was downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

HOLD_MUSIC: Final = Path(__file__).with_name("hold-music.wav")
"""The built-in hold music: 24 s of soft chords, 8 kHz mono 16-bit PCM, loops seamlessly."""

__all__ = ["HOLD_MUSIC"]
