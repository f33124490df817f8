"""Web accounts: passwords, logging in, and who a logged-in session belongs to.

Owns the rules of the web login: passwords are stored only as argon2id PHC strings (pwdlib),
five wrong passwords for one username within 15 minutes lock it for 15 minutes, one client
address may try at most 10 logins a minute, and disabled users (or users without a web password)
cannot log in. Both throttles live in this process's memory (bounded; a restart forgets them),
as the API contract says. Must not know: HTTP, cookies, sessions, the CLI.

Hashing costs about 0.1 s of CPU and 64 MiB, so it runs in a worker thread (the event loop also
runs the media clock, which must not stall) and at most `HASH_SLOTS` at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, ParamSpec, TypeVar

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.models import User

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
V = TypeVar("V")

# The users.username column is String(64); anything longer cannot be a user.
MAX_USERNAME_LENGTH: Final = 64
MIN_PASSWORD_LENGTH: Final = 8
# Long enough for any passphrase or password manager, short enough to bound hashing work.
MAX_PASSWORD_LENGTH: Final = 256

USER_FAILURES: Final = 5  # wrong passwords for one username ...
USER_FAILURE_WINDOW: Final = 15 * 60.0  # ... within this many seconds ...
USER_LOCK_SECONDS: Final = 15 * 60.0  # ... lock it for this long.
# Failed logins from one client address ... (successes are not counted: a whole office
# behind one NAT address logs in at 9 o'clock) ...
ADDRESS_ATTEMPTS: Final = 10
ADDRESS_WINDOW: Final = 60.0  # ... per this many seconds.
# Usernames and addresses remembered at once. A flood of made-up names cannot grow memory past
# this; when it is full, entries whose window has passed go first, then the oldest.
MAX_TRACKED: Final = 10_000
# Concurrent argon2 computations (each holds 64 MiB with the default parameters).
HASH_SLOTS: Final = 2


class AccountError(Exception):
    """A login or an account change refused; the message is fit to show to a person."""


class BadCredentials(AccountError):
    """Wrong username or password (or a disabled user): deliberately not told apart."""

    def __init__(self) -> None:
        super().__init__("wrong username or password")


class AccountLocked(AccountError):
    """Too many wrong passwords for this username: try again in `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many wrong passwords: the account is locked for a while")
        self.retry_after = retry_after


class TooManyAttempts(AccountError):
    """Too many logins from this client address: try again in `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many login attempts: try again later")
        self.retry_after = retry_after


class UnknownUser(AccountError):
    """No user of that name."""


class PasswordRejected(AccountError):
    """The new password breaks the password rules."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who a request acts as: a user that exists, is enabled and has a web password."""

    id: int
    username: str
    role: str
    display_name: str
    # Derived from the stored password hash: the web session keeps it and compares it on every
    # request, so setting a new password ends every session opened with the old one.
    session_stamp: str = field(repr=False)


class AccountService:
    """Web logins over a session factory; `clock` (monotonic seconds) drives the throttles."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], float] = time.monotonic,
        hasher: PasswordHash | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        # argon2id with the argon2-cffi defaults (RFC 9106's second recommendation: t=3,
        # 64 MiB, p=4). Tests pass cheaper parameters; a stored hash made with other
        # parameters is rehashed with these at the next successful login.
        self._hash = hasher if hasher is not None else PasswordHash((Argon2Hasher(),))
        self._hash_slots = asyncio.Semaphore(HASH_SLOTS)
        self._dummy_hash: str | None = None
        self._failures = _Recent(window=USER_FAILURE_WINDOW)
        self._attempts = _Recent(window=ADDRESS_WINDOW)
        self._locked_until: dict[str, float] = {}

    # --- logging in ------------------------------------------------------------------------

    async def authenticate(self, username: str, password: str, *, address: str) -> Principal:
        """The principal for a right username and password from client `address`.

        Raises `TooManyAttempts` (this address), `AccountLocked` (this username; even a right
        password is refused then) or `BadCredentials`. An unknown username costs the same
        hashing work as a known one, and is locked the same way, so neither the time taken nor
        the answer tells which usernames exist.
        """
        now = self._clock()
        self._check_address(address, now)
        if len(username) > MAX_USERNAME_LENGTH:
            # Never a user; cut it so a huge name costs no memory in the throttle or the log.
            username = username[: MAX_USERNAME_LENGTH + 1]
        self._check_lock(username, now)
        user = None
        if len(username) <= MAX_USERNAME_LENGTH and len(password) <= MAX_PASSWORD_LENGTH:
            async with self._sessions() as session:
                user = await session.scalar(select(User).where(User.username == username))
        stored = user.password_hash if user is not None and user.enabled else None
        ok, new_hash = await self._verify(password, stored)
        if user is None or stored is None or not ok:
            self._failed(username, address)
            raise BadCredentials()
        self._failures.forget(username)
        if new_hash is not None:
            stored = await self._store_rehash(user.id, stored, new_hash)
        log.info("web login: %r (%s) from %s", username, user.role, address)
        return _principal(user, stored)

    async def principal(self, username: str) -> Principal | None:
        """The user as it is now, or None when it is gone, disabled or has no web password.

        Read on every request, so disabling a user, changing a role or a password takes
        effect at once rather than when the session cookie expires.
        """
        if len(username) > MAX_USERNAME_LENGTH:
            return None
        async with self._sessions() as session:
            user = await session.scalar(
                select(User).where(User.username == username, User.enabled.is_(True))
            )
        if user is None or user.password_hash is None:
            return None
        return _principal(user, user.password_hash)

    # --- passwords -------------------------------------------------------------------------

    async def set_password(self, username: str, password: str) -> None:
        """Give `username` a new web password (ending its sessions and any lock on it)."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise PasswordRejected(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise PasswordRejected(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
        hashed = await self._in_thread(self._hash.hash, password)
        async with self._sessions.begin() as session:
            user = await session.scalar(select(User).where(User.username == username))
            if user is None:
                raise UnknownUser(f"no user {username!r}")
            user.password_hash = hashed
        self._failures.forget(username)
        self._locked_until.pop(username, None)

    # --- throttles -------------------------------------------------------------------------

    def _check_address(self, address: str, now: float) -> None:
        recent = self._attempts.get(address, now)
        if len(recent) >= ADDRESS_ATTEMPTS:
            # Refused attempts are not counted: the client is free again a minute after its
            # tenth failure however often it knocks meanwhile.
            raise TooManyAttempts(recent[-ADDRESS_ATTEMPTS] + ADDRESS_WINDOW - now)

    def _check_lock(self, username: str, now: float) -> None:
        until = self._locked_until.get(username)
        if until is None:
            return
        if until > now:
            raise AccountLocked(until - now)
        del self._locked_until[username]

    def _failed(self, username: str, address: str) -> None:
        # Read the clock again: hashing took a while since the attempt began.
        now = self._clock()
        self._attempts.add(address, now)
        self._failures.add(username, now)
        if len(self._failures.get(username, now)) < USER_FAILURES:
            log.info("web login failed: %r from %s", username, address)
            return
        self._failures.forget(username)
        if len(self._locked_until) >= MAX_TRACKED:
            _evict(self._locked_until, lambda until: until <= now)
        self._locked_until[username] = now + USER_LOCK_SECONDS
        log.warning(
            "web login: %r locked for %d s after %d wrong passwords (the last from %s)",
            username,
            USER_LOCK_SECONDS,
            USER_FAILURES,
            address,
        )

    # --- hashing ---------------------------------------------------------------------------

    async def _verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """(right?, a rehash to store or None); without a stored hash, burn the same time."""
        if stored is not None:
            try:
                return await self._in_thread(self._hash.verify_and_update, password, stored)
            except UnknownHashError:
                log.error("user's password_hash is not a hash pwdlib knows; set it again")
        await self._in_thread(self._hash.verify, password, await self._dummy())
        return False, None

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._in_thread(self._hash.hash, secrets.token_urlsafe(16))
        return self._dummy_hash

    async def _in_thread(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._hash_slots:
            return await asyncio.to_thread(function, *args, **kwargs)

    async def _store_rehash(self, user_id: int, old: str, new: str) -> str:
        async with self._sessions.begin() as session:
            user = await session.get(User, user_id)
            # Only if nobody set another password meanwhile; that one stays.
            if user is None or user.password_hash != old:
                return old
            user.password_hash = new
        return new


def _principal(user: User, password_hash: str) -> Principal:
    return Principal(
        id=user.id,
        username=user.username,
        role=user.role,
        display_name=user.display_name,
        session_stamp=hashlib.sha256(password_hash.encode()).hexdigest()[:32],
    )


class _Recent:
    """Times of recent events per key (a username, an address), forgotten after `window`.

    Keeps at most `MAX_TRACKED` keys and `keep` times per key: enough for the decisions made
    on them, and a bound on memory whatever a client sends.
    """

    def __init__(self, *, window: float, keep: int = max(USER_FAILURES, ADDRESS_ATTEMPTS)) -> None:
        self._window = window
        self._keep = keep
        self._times: dict[str, deque[float]] = {}

    def get(self, key: str, now: float) -> deque[float]:
        """The times of `key` within the window, oldest first (empty when none)."""
        times = self._times.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._times[key]
        return times

    def add(self, key: str, now: float) -> None:
        times = self._times.get(key)
        if times is None:
            if len(self._times) >= MAX_TRACKED:
                _evict(self._times, lambda t: not t or t[-1] <= now - self._window)
            times = self._times[key] = deque(maxlen=self._keep)
        times.append(now)

    def forget(self, key: str) -> None:
        self._times.pop(key, None)


def _evict(entries: dict[str, V], expired: Callable[[V], bool]) -> None:
    """Make room in a full `entries`: drop the expired, else the oldest tenth.

    Dropping a tenth at once means the next sweep is `MAX_TRACKED / 10` insertions away, so a
    flood costs O(1) per insertion on average, not a full scan each time.
    """
    for key in [key for key, value in entries.items() if expired(value)]:
        del entries[key]
    if len(entries) >= MAX_TRACKED:
        for key in list(entries)[: max(1, MAX_TRACKED // 10)]:
            del entries[key]


__all__ = [
    "AccountError",
    "AccountLocked",
    "AccountService",
    "BadCredentials",
    "PasswordRejected",
    "Principal",
    "TooManyAttempts",
    "UnknownUser",
]
