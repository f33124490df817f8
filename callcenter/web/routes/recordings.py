"""Recordings for QA and supervisors: search, one recording's detail, and its audio streamed
with HTTP range requests (the player seeks without downloading the whole call)."""

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel

from ...services.accounts import Principal
from ...services.audit import RECORDING_DOWNLOAD, RECORDING_LISTEN
from ...services.recordings.catalogue import MAX_LIMIT, RecordingCatalogue, RecordingQuery
from ..deps import Deps, require_roles

router = APIRouter(prefix="/api/recordings", tags=["recordings"])

Reviewer = Annotated[Principal, require_roles("qa", "supervisor")]
RecordingId = Annotated[int, Path(ge=1)]


def get_catalogue(deps: Deps) -> RecordingCatalogue:
    if deps.recordings is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "recordings are not kept here")
    return deps.recordings


Catalogue = Annotated[RecordingCatalogue, Depends(get_catalogue)]


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


class RecordingInfo(RecordingItem):
    timeline: list[dict[str, Any]]
    call_timeline: list[dict[str, Any]]
    peaks: list[list[int]] | None
    sha256: str | None
    size_bytes: int | None
    compressed: bool
    failure: str


@router.get("")
async def search(
    user: Reviewer,
    catalogue: Catalogue,
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
            limit=limit,
            before_id=before_id,
        )
    )
    return [RecordingItem.model_validate(item, from_attributes=True) for item in found]


@router.get("/{recording_id}")
async def detail(recording_id: RecordingId, user: Reviewer, catalogue: Catalogue) -> RecordingInfo:
    found = await catalogue.get(recording_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such recording")
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
    )


@router.get("/{recording_id}/audio", response_class=FileResponse)
async def audio(
    recording_id: RecordingId,
    request: Request,
    user: Reviewer,
    catalogue: Catalogue,
    deps: Deps,
    format: Literal["wav", "opus"] = "wav",
    download: bool = False,
) -> FileResponse:
    """The audio, with `Range` requests (206) for a player that seeks. Every listen (a
    request from the start) and every download is on the audit log first: no audit, no
    audio."""
    if deps.audit is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the audit log is not kept")
    path = await catalogue.file(recording_id, compressed=format == "opus")
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such recording file")
    if download or _from_the_start(request.headers.get("range")):
        action = RECORDING_DOWNLOAD if download else RECORDING_LISTEN
        await deps.audit.append(
            user.username, action, f"recording:{recording_id}", {"format": format}
        )
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
