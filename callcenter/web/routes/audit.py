"""The audit log for supervisors and administrators: who listened to, downloaded, held,
deleted or erased what, and whether the hash chain still holds (docs/qa-api.md)."""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from ...services.accounts import Principal
from ...services.audit import MAX_LIMIT
from ..deps import require_roles
from .recordings import Audit

router = APIRouter(prefix="/api/audit", tags=["audit"])

Overseer = Annotated[Principal, require_roles("supervisor", "admin")]


class AuditItem(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    hash: str


class Verified(BaseModel):
    ok: bool
    entries: int
    first_bad_id: int | None
    reason: str


@router.get("")
async def entries(
    user: Overseer,
    audit: Audit,
    subject: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> list[AuditItem]:
    """Newest first; page on with `before_id` = the last id seen."""
    try:
        found = await audit.entries(subject=subject, actor=actor, limit=limit, before_id=before_id)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return [
        AuditItem(
            id=e.id,
            at=e.at,
            actor=e.actor,
            action=e.action,
            subject=e.subject,
            detail=e.detail,
            hash=e.hash,
        )
        for e in found
    ]


@router.get("/verify")
async def verify(user: Overseer, audit: Audit) -> Verified:
    """Walk the whole chain and recompute every hash."""
    result = await audit.verify()
    return Verified(
        ok=result.ok, entries=result.entries, first_bad_id=result.first_bad_id, reason=result.reason
    )
