"""Recordings for QA and supervisors: search, one recording's detail, its audio streamed with
HTTP range requests (the player seeks without downloading the whole call), evaluations and
comments; for supervisors and administrators legal hold, deletion and erasure (docs/qa-api.md).

A qa reviewer sees only the queues assigned to them: every route here narrows by
`VisibleQueues`, and a recording outside them is 404, as if it did not exist.
"""

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, model_validator

from ...services.accounts import Principal
from ...services.audit import RECORDING_DOWNLOAD, RECORDING_LISTEN, AuditLog
from ...services.qa import QaConflict, QaError, QaInvalid, QaNotFound, QaServices
from ...services.recordings.catalogue import MAX_LIMIT, RecordingCatalogue, RecordingQuery
from ...services.recordings.retention import (
    RecordingHeld,
    RecordingNotFound,
    RecordingRetention,
    RemovalFailed,
    RetentionError,
)
from ..deps import Deps, require_roles

router = APIRouter(prefix="/api/recordings", tags=["recordings"])
erasures = APIRouter(prefix="/api/erasures", tags=["recordings"])

Reviewer = Annotated[Principal, require_roles("qa", "supervisor", "admin")]
Keeper = Annotated[Principal, require_roles("supervisor", "admin")]
Eraser = Annotated[Principal, require_roles("admin")]
RecordingId = Annotated[int, Path(ge=1)]


def get_catalogue(deps: Deps) -> RecordingCatalogue:
    if deps.recordings is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "recordings are not kept here")
    return deps.recordings


def get_qa(deps: Deps) -> QaServices:
    if deps.qa is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "QA is not set up here")
    return deps.qa


def get_retention(deps: Deps) -> RecordingRetention:
    if deps.retention is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "deletion is not set up here")
    return deps.retention


def get_audit(deps: Deps) -> AuditLog:
    if deps.audit is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the audit log is not kept")
    return deps.audit


async def get_visible_queues(user: Reviewer, deps: Deps) -> frozenset[str] | None:
    """None: every queue; else the reviewer's (without the QA service: none at all)."""
    if deps.qa is None:
        return None if user.role != "qa" else frozenset()
    return await deps.qa.assignments.visible_queues(user.username, user.role)


async def get_keeper_queues(user: Keeper) -> frozenset[str] | None:
    return None  # supervisors and administrators see every queue


Catalogue = Annotated[RecordingCatalogue, Depends(get_catalogue)]
Qa = Annotated[QaServices, Depends(get_qa)]
Retention = Annotated[RecordingRetention, Depends(get_retention)]
Audit = Annotated[AuditLog, Depends(get_audit)]
VisibleQueues = Annotated[frozenset[str] | None, Depends(get_visible_queues)]


@contextlib.contextmanager
def qa_errors() -> Iterator[None]:
    try:
        yield
    except (QaNotFound, RecordingNotFound) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except (QaConflict, RecordingHeld) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except QaInvalid as exc:
        raise HTTPException(422, str(exc)) from exc
    except RemovalFailed as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    except (QaError, RetentionError) as exc:  # pragma: no cover - every kind is listed above
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc


class RecordingItem(BaseModel):
    id: int
    call_id: str
    state: str
    started_at: dt.datetime
    duration_seconds: float | None
    caller: str
    customer_id: int | None
    agent: str | None
    queue: str | None
    disposition: str | None
    outcome: str | None
    qa_score: float | None
    legal_hold: bool


class EvaluationItem(BaseModel):
    id: int
    recording_id: int
    scorecard_id: int
    scorecard: str
    reviewer: str
    answers: dict[str, Any]
    score: float
    notes: str
    updated_at: dt.datetime


class CommentItem(BaseModel):
    id: int
    recording_id: int
    author: str
    at_seconds: float
    text: str
    created_at: dt.datetime


class RecordingInfo(RecordingItem):
    timeline: list[dict[str, Any]]
    call_timeline: list[dict[str, Any]]
    peaks: list[list[int]] | None
    sha256: str | None
    size_bytes: int | None
    compressed: bool
    failure: str
    legal_hold_reason: str
    evaluations: list[EvaluationItem]
    comments: list[CommentItem]


@router.get("")
async def search(
    user: Reviewer,
    catalogue: Catalogue,
    queues: VisibleQueues,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    queue: Annotated[str | None, Query(max_length=128)] = None,
    customer_id: Annotated[int | None, Query(ge=1)] = None,
    number: Annotated[str | None, Query(max_length=32)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    min_seconds: Annotated[float | None, Query(ge=0)] = None,
    max_seconds: Annotated[float | None, Query(ge=0)] = None,
    disposition: Annotated[str | None, Query(max_length=16)] = None,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
    state: Literal["recording", "complete", "incomplete", "failed"] | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    scored: bool | None = None,
    legal_hold: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> list[RecordingItem]:
    """Newest first; page on with `before_id` = the last id seen."""
    for moment in (since, until):
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(422, "since and until need a time zone (e.g. Z or +01:00)")
    found = await catalogue.search(
        RecordingQuery(
            agent=agent,
            queue=queue,
            customer_id=customer_id,
            number=number,
            since=since,
            until=until,
            min_seconds=min_seconds,
            max_seconds=max_seconds,
            disposition=disposition,
            outcome=outcome,
            state=state,
            min_score=min_score,
            max_score=max_score,
            scored=scored,
            legal_hold=legal_hold,
            queues=queues,
            limit=limit,
            before_id=before_id,
        )
    )
    return [RecordingItem.model_validate(item, from_attributes=True) for item in found]


async def _info(
    recording_id: int, catalogue: RecordingCatalogue, qa: QaServices | None, queues: Any
) -> RecordingInfo:
    found = await catalogue.get(recording_id, queues=queues)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such recording")
    evaluations: list[EvaluationItem] = []
    comments: list[CommentItem] = []
    if qa is not None:
        with qa_errors():
            evaluations = [
                EvaluationItem.model_validate(e, from_attributes=True)
                for e in await qa.reviews.evaluations(recording_id, queues=queues)
            ]
            comments = [
                CommentItem.model_validate(c, from_attributes=True)
                for c in await qa.reviews.comments(recording_id, queues=queues)
            ]
    summary = RecordingItem.model_validate(found.summary, from_attributes=True)
    return RecordingInfo(
        **summary.model_dump(),
        timeline=found.timeline,
        call_timeline=found.call_timeline,
        peaks=found.peaks,
        sha256=found.sha256,
        size_bytes=found.size_bytes,
        compressed=found.compressed,
        failure=found.failure,
        legal_hold_reason=found.legal_hold_reason,
        evaluations=evaluations,
        comments=comments,
    )


@router.get("/{recording_id}")
async def detail(
    recording_id: RecordingId,
    user: Reviewer,
    catalogue: Catalogue,
    deps: Deps,
    queues: VisibleQueues,
) -> RecordingInfo:
    return await _info(recording_id, catalogue, deps.qa, queues)


@router.get("/{recording_id}/audio", response_class=FileResponse)
async def audio(
    recording_id: RecordingId,
    request: Request,
    user: Reviewer,
    catalogue: Catalogue,
    audit: Audit,
    queues: VisibleQueues,
    format: Literal["wav", "opus"] = "wav",
    download: bool = False,
) -> FileResponse:
    """The audio, with `Range` requests (206) for a player that seeks. Every listen (a
    request from the start) and every download is on the audit log first: no audit, no
    audio."""
    path = await catalogue.file(recording_id, compressed=format == "opus", queues=queues)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such recording file")
    if download or _from_the_start(request.headers.get("range")):
        action = RECORDING_DOWNLOAD if download else RECORDING_LISTEN
        await audit.append(user.username, action, f"recording:{recording_id}", {"format": format})
    media = "audio/wav" if format == "wav" else "audio/ogg"
    headers = {"Cache-Control": "private, no-store"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="recording-{recording_id}.{format}"'
    return FileResponse(path, media_type=media, headers=headers)


def _from_the_start(range_header: str | None) -> bool:
    """A player's first request (no range, or one from byte 0), not its seeks."""
    if range_header is None:
        return True
    spec = range_header.strip().lower().removeprefix("bytes=").strip()
    return spec.startswith("0-")


# --- evaluations and comments -----------------------------------------------------------------


class EvaluationBody(BaseModel):
    answers: dict[Annotated[str, Field(max_length=40)], int | None] = Field(max_length=50)
    notes: str = Field(default="", max_length=4000)


@router.put("/{recording_id}/evaluations/{scorecard_id}")
async def evaluate(
    recording_id: RecordingId,
    scorecard_id: Annotated[int, Path(ge=1)],
    body: EvaluationBody,
    user: Reviewer,
    qa: Qa,
    queues: VisibleQueues,
) -> EvaluationItem:
    """Make or replace your evaluation of the recording with that scorecard."""
    with qa_errors():
        saved = await qa.reviews.evaluate(
            recording_id,
            scorecard_id,
            reviewer=user.username,
            answers=body.answers,
            notes=body.notes,
            queues=queues,
        )
    return EvaluationItem.model_validate(saved, from_attributes=True)


@router.delete("/{recording_id}/evaluations/{scorecard_id}", status_code=204)
async def withdraw(
    recording_id: RecordingId,
    scorecard_id: Annotated[int, Path(ge=1)],
    user: Reviewer,
    qa: Qa,
    queues: VisibleQueues,
) -> Response:
    with qa_errors():
        await qa.reviews.withdraw(recording_id, scorecard_id, reviewer=user.username, queues=queues)
    return Response(status_code=204)


class CommentBody(BaseModel):
    at_seconds: float = Field(ge=0, le=86400)
    text: str = Field(min_length=1, max_length=2000)


@router.post("/{recording_id}/comments", status_code=201)
async def comment(
    recording_id: RecordingId, body: CommentBody, user: Reviewer, qa: Qa, queues: VisibleQueues
) -> CommentItem:
    with qa_errors():
        made = await qa.reviews.comment(
            recording_id,
            author=user.username,
            at_seconds=body.at_seconds,
            text=body.text,
            queues=queues,
        )
    return CommentItem.model_validate(made, from_attributes=True)


@router.delete("/{recording_id}/comments/{comment_id}", status_code=204)
async def delete_comment(
    recording_id: RecordingId,
    comment_id: Annotated[int, Path(ge=1)],
    user: Reviewer,
    qa: Qa,
    queues: VisibleQueues,
) -> Response:
    with qa_errors():
        await qa.reviews.delete_comment(
            recording_id,
            comment_id,
            by=user.username,
            any_author=user.role in ("supervisor", "admin"),
            queues=queues,
        )
    return Response(status_code=204)


# --- keeping and deleting ---------------------------------------------------------------------


class HoldBody(BaseModel):
    on: bool
    reason: str = Field(default="", max_length=255)

    @model_validator(mode="after")
    def _reason_when_on(self) -> "HoldBody":
        if self.on and not self.reason.strip():
            raise ValueError("a legal hold needs a reason")
        return self


@router.put("/{recording_id}/legal-hold")
async def legal_hold(
    recording_id: RecordingId,
    body: HoldBody,
    user: Keeper,
    retention: Retention,
    catalogue: Catalogue,
    deps: Deps,
) -> RecordingInfo:
    """Hold (nothing deletes it: not by hand, retention or erasure) or release; audited."""
    with qa_errors():
        await retention.set_legal_hold(
            recording_id, on=body.on, reason=body.reason, actor=user.username
        )
    return await _info(recording_id, catalogue, deps.qa, None)


@router.delete("/{recording_id}", status_code=204)
async def delete_recording(
    recording_id: RecordingId,
    user: Keeper,
    retention: Retention,
    reason: Annotated[str, Query(max_length=255)] = "",
) -> Response:
    """The files are removed; the row stays as the tombstone. 409 under legal hold; audited."""
    with qa_errors():
        await retention.delete(recording_id, actor=user.username, reason=reason)
    return Response(status_code=204)


class ErasureBody(BaseModel):
    customer_id: int | None = Field(default=None, ge=1)
    number: str | None = Field(default=None, min_length=1, max_length=32)
    reason: str = Field(min_length=1, max_length=255)

    @model_validator(mode="after")
    def _one_subject(self) -> "ErasureBody":
        if (self.customer_id is None) == (self.number is None):
            raise ValueError("give a customer_id or a number (one of them)")
        return self


class ErasureDone(BaseModel):
    erased: list[int]
    held: list[int]
    failed: list[int]


@erasures.post("")
async def erase(body: ErasureBody, user: Eraser, retention: Retention) -> ErasureDone:
    """Delete every recording of a customer's or a number's calls (held ones are kept and
    listed); the request and each deletion are audited."""
    try:
        done = await retention.erase(
            actor=user.username,
            reason=body.reason,
            customer_id=body.customer_id,
            number=body.number,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return ErasureDone(erased=done.erased, held=done.held, failed=done.failed)


__all__ = ["erasures", "router"]
