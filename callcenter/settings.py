"""The one `Settings` object: every knob of the service, read from `CALLCENTER_*` variables.

Only the composition root (`callcenter.cli`) builds it and hands the parts down; layers below
receive plain values, never the environment. New components (SIP, HTTP, RTP) add their fields
here, grouped under a comment, when they are built.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

import phonenumbers
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

DATABASE_FILE = "callcenter.db"


class TrunkSettings(BaseModel):
    """One SIP trunk (carrier): who may send us calls by address, and where calls out go."""

    name: str = Field(min_length=1, max_length=64)
    # IP addresses or CIDR networks whose INVITEs are accepted without authentication.
    peers: list[str] = Field(min_length=1)
    # Dialled number -> extension or user name it rings (other numbers are taken as names).
    numbers: dict[str, str] = {}
    # host[:port][;transport=tcp] that calls to outside numbers are sent to (None: inbound only).
    outbound: str | None = None

    @field_validator("peers")
    @classmethod
    def _networks(cls, peers: list[str]) -> list[str]:
        for peer in peers:
            ipaddress.ip_network(peer.strip(), strict=False)  # ValueError names the bad one
        return peers


class Settings(BaseSettings):
    """Configuration of one service process (`CALLCENTER_<FIELD>` in the environment)."""

    model_config = SettingsConfigDict(env_prefix="CALLCENTER_", extra="ignore")

    # Storage.
    data_dir: Path = Path("var")
    # Empty means "the SQLite file in data_dir"; set it for PostgreSQL
    # (postgresql+asyncpg://…) or a SQLite file elsewhere.
    database_url: str = ""
    recordings_dir: Path = Path("recordings")
    # Days a call recording is kept when its queue sets no `retention_days` (ivr/queues.yaml);
    # unset: kept until deleted by hand or erased. Held recordings are never deleted.
    recording_retention_days: int | None = Field(default=None, ge=1, le=36_500)
    # Record calls from the IVR's answer (the caller, and the prompts they heard), not only
    # from the agent's: menus and self-service included. A flow pauses it for card numbers
    # with `set: {recording: paused}` and resumes it with `set: {recording: active}`.
    record_ivr: bool = False

    # When everyone else has left a customer's conference: "end" the call, or put the
    # customer back in the call's "queue" for the next agent.
    conference_alone: Literal["end", "queue"] = "end"

    # SIP: one UDP socket and one TCP listener on this address (port 0 picks a free one).
    sip_host: str = "127.0.0.1"
    sip_port: int = Field(default=5060, ge=0, le=65535)
    # The digest realm phones authenticate in. Stored HA1 hashes depend on it: changing it
    # means setting every SIP password again.
    sip_realm: str = "callcenter"
    # RTP: one even port per call leg from this range, on sip_host (RTCP would take port+1).
    rtp_port_min: int = Field(default=20000, ge=1024, le=65534)
    rtp_port_max: int = Field(default=20999, ge=1025, le=65535)
    # A call whose peer sends no RTP for this long (and has not put it on hold) is hung up.
    media_timeout: float = Field(default=30.0, gt=0)
    # SIP transactions kept at once (each call holds about 100 transaction-seconds, so this
    # bounds the sustained call rate near N/100 per second); beyond it requests get 503.
    sip_max_transactions: int = Field(default=50_000, ge=100)
    # A bridged call (to a phone or out through a trunk) rings this long before the caller
    # hears 480.
    ring_timeout: float = Field(default=60.0, gt=0)
    # Music on hold and for the `music` extension: a WAV file (any rate; empty: built-in).
    hold_music: Path | None = None
    # SIP trunks, as JSON: [{"name": "carrier", "peers": ["203.0.113.0/24"],
    # "numbers": {"+15551230000": "alice"}, "outbound": "203.0.113.5:5060"}]. Without any, only
    # registered users (digest) may call.
    trunks: list[TrunkSettings] = []
    # Digest algorithms offered to phones, most preferred first. MD5 alone by default: some
    # deployed phones (baresip 1.0) refuse a 401 that offers anything else as well.
    sip_digest_algorithms: tuple[Literal["MD5", "SHA-256"], ...] = ("MD5",)

    # Customers: numbers written without a country code (national format) are read as this
    # ISO 3166 region's; stored numbers are always E.164.
    default_region: str = Field(default="GB", min_length=2, max_length=2)

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r} (an ISO 3166 code such as GB or US)")
        return region

    # IVR: flows in <ivr_dir>/flows/*.yaml, recorded prompts in <ivr_dir>/prompts/; `text:`
    # prompts are spoken by espeak-ng with this voice and cached in <data_dir>/prompt-cache.
    ivr_dir: Path = Path("ivr")
    tts_voice: str = Field(default="en", pattern=r"^[A-Za-z0-9+_-]{1,40}$")

    # ACD: an agent whose SIP phone registers is logged in (and goes available). For agents who
    # have only a desk phone until the web softphone exists; the demo turns it on.
    acd_login_on_register: bool = False

    # HTTP: the agent page, the API and its WebSocket, served by `callcenter serve` in the
    # same event loop as SIP and media (port 0 picks a free one).
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    # Signs the session cookies. Empty: a random key kept in <data_dir>/web-session.key (so
    # sessions survive a restart); set it to share sessions between processes.
    secret_key: str = Field(default="", repr=False)

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("the secret key needs at least 32 characters (or leave it empty)")
        return value

    # Mark the session cookie Secure: set it when the pages are served over HTTPS (a proxy).
    https_only: bool = False

    # Process.
    log_level: LogLevel = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        # `CALLCENTER_LOG_LEVEL=debug` is what people type.
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _derive_database_url(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{(self.data_dir / DATABASE_FILE).as_posix()}"
        return self
