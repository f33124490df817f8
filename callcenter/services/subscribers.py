"""Subscribers: users who register SIP phones, their digest credentials and their bindings.

Owns the rules for SIP credentials (only HA1 hashes are stored, for the realm the service
answers with, never the plain password) and the database side of registration: the engine
asks through its `SubscriberDirectory` protocol and never sees the database.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.models import ROLES, SipBinding, User
from ..engine.registration import SipCredentials
from ..sip.digest import compute_ha1
from ..sip.registrar import Binding, Source


class SubscriberError(Exception):
    """A subscriber cannot be created or changed as asked."""


async def add_user(
    session: AsyncSession,
    *,
    username: str,
    role: str,
    realm: str,
    sip_password: str | None = None,
    display_name: str = "",
) -> User:
    """Create a user; with `sip_password`, it may register SIP phones under `realm`."""
    if role not in ROLES:
        raise SubscriberError(f"role must be one of {', '.join(ROLES)}")
    if not username or any(c in username for c in ':@;<>"\\ \t\r\n'):
        raise SubscriberError('a username is one SIP user part: no spaces or : @ ; < > " \\')
    existing = await session.scalar(select(User).where(User.username == username))
    if existing is not None:
        raise SubscriberError(f"user {username!r} exists")
    user = User(username=username, role=role, display_name=display_name)
    if sip_password is not None:
        if len(sip_password) < 8:
            raise SubscriberError("a SIP password needs at least 8 characters")
        user.sip_ha1_md5 = compute_ha1(username, realm, sip_password, "MD5")
        user.sip_ha1_sha256 = compute_ha1(username, realm, sip_password, "SHA-256")
    session.add(user)
    await session.flush()
    return user


class SqlSubscriberDirectory:
    """The engine's `SubscriberDirectory`, backed by the users and sip_bindings tables."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def credentials(self, username: str) -> SipCredentials | None:
        async with self._sessions() as session:
            user = await session.scalar(
                select(User).where(User.username == username, User.enabled.is_(True))
            )
        if user is None or (user.sip_ha1_md5 is None and user.sip_ha1_sha256 is None):
            return None
        return SipCredentials(
            username=user.username, ha1_md5=user.sip_ha1_md5, ha1_sha256=user.sip_ha1_sha256
        )

    async def load_bindings(self) -> Sequence[Binding]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(SipBinding))).all()
        return [_binding(row) for row in rows]

    async def save_bindings(self, aor: str, bindings: Sequence[Binding]) -> None:
        """Replace the stored bindings of `aor` in one transaction."""
        async with self._sessions.begin() as session:
            await session.execute(delete(SipBinding).where(SipBinding.aor == aor))
            session.add_all(_row(b) for b in bindings)


def _binding(row: SipBinding) -> Binding:
    return Binding(
        aor=row.aor,
        contact=row.contact,
        expires_at=row.expires_at,
        call_id=row.call_id,
        cseq=row.cseq,
        source=Source(row.source_host, row.source_port, row.source_transport),
        q=row.q,
        instance=row.instance,
        reg_id=row.reg_id,
    )


def _row(binding: Binding) -> SipBinding:
    return SipBinding(
        aor=binding.aor,
        contact=binding.contact,
        expires_at=binding.expires_at,
        call_id=binding.call_id,
        cseq=binding.cseq,
        q=binding.q,
        source_transport=binding.source.transport,
        source_host=binding.source.host,
        source_port=binding.source.port,
        instance=binding.instance,
        reg_id=binding.reg_id,
    )
