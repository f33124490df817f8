"""Reviews of a recording: evaluations (a filled-in scorecard per reviewer) and comments
pinned to moments of the recording.

Owns saving, replacing and withdrawing a reviewer's evaluation, keeping the recording's
`qa_score` (the mean of its evaluations, what the search filters on) in step in the same
transaction, and the comments. Every call names the viewer's visible queues, so a reviewer can
neither read nor write reviews of a recording outside them. Must not know HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import Evaluation, Recording, RecordingComment, Scorecard, utcnow

from .access import visible_recording
from .errors import QaConflict, QaInvalid, QaNotFound
from .scorecards import questions_of, score

MAX_COMMENT: Final = 2000
MAX_NOTES: Final = 4000
MAX_COMMENTS_PER_RECORDING: Final = 500
MAX_EVALUATIONS_SHOWN: Final = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationView:
    id: int
    recording_id: int
    scorecard_id: int
    scorecard: str
    reviewer: str
    answers: dict[str, object]
    score: float
    notes: str
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CommentView:
    id: int
    recording_id: int
    author: str
    at_seconds: float
    text: str
    created_at: datetime


class Reviews:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def evaluate(
        self,
        recording_id: int,
        scorecard_id: int,
        *,
        reviewer: str,
        answers: Mapping[str, object],
        notes: str,
        queues: frozenset[str] | None,
    ) -> EvaluationView:
        """Make or replace `reviewer`'s evaluation of the recording with that scorecard."""
        if len(notes) > MAX_NOTES:
            raise QaInvalid(f"notes are at most {MAX_NOTES} characters")
        async with self._sessions() as session:
            recording = await visible_recording(session, recording_id, queues)
            card = await session.get(Scorecard, scorecard_id)
            if card is None:
                raise QaNotFound("no such scorecard")
            if not card.active:
                raise QaConflict(f"the scorecard {card.name!r} is retired")
            result = score(questions_of(card), answers)
            now = utcnow()
            evaluation = await session.scalar(
                select(Evaluation).where(
                    Evaluation.recording_id == recording.id,
                    Evaluation.scorecard_id == card.id,
                    Evaluation.reviewer == reviewer,
                )
            )
            if evaluation is None:
                evaluation = Evaluation(
                    recording_id=recording.id,
                    scorecard_id=card.id,
                    reviewer=reviewer,
                    created_at=now,
                )
                session.add(evaluation)
            evaluation.answers = dict(answers)
            evaluation.score = result
            evaluation.notes = notes
            evaluation.updated_at = now
            await session.flush()
            await _refresh_score(session, recording)
            await session.commit()
            return _evaluation_view(evaluation, card.name)

    async def withdraw(
        self, recording_id: int, scorecard_id: int, *, reviewer: str, queues: frozenset[str] | None
    ) -> None:
        async with self._sessions() as session:
            recording = await visible_recording(session, recording_id, queues)
            gone = await session.execute(
                delete(Evaluation).where(
                    Evaluation.recording_id == recording.id,
                    Evaluation.scorecard_id == scorecard_id,
                    Evaluation.reviewer == reviewer,
                )
            )
            if not getattr(gone, "rowcount", 0):
                raise QaNotFound("you have no evaluation of this recording with that scorecard")
            await _refresh_score(session, recording)
            await session.commit()

    async def evaluations(
        self, recording_id: int, *, queues: frozenset[str] | None
    ) -> list[EvaluationView]:
        async with self._sessions() as session:
            recording = await visible_recording(session, recording_id, queues)
            rows = await session.execute(
                select(Evaluation, Scorecard.name)
                .join(Scorecard, Scorecard.id == Evaluation.scorecard_id)
                .where(Evaluation.recording_id == recording.id)
                .order_by(Evaluation.updated_at.desc(), Evaluation.id.desc())
                .limit(MAX_EVALUATIONS_SHOWN)
            )
            return [_evaluation_view(evaluation, name) for evaluation, name in rows]

    async def comment(
        self,
        recording_id: int,
        *,
        author: str,
        at_seconds: float,
        text: str,
        queues: frozenset[str] | None,
    ) -> CommentView:
        text = text.strip()
        if not 1 <= len(text) <= MAX_COMMENT:
            raise QaInvalid(f"a comment is 1-{MAX_COMMENT} characters")
        async with self._sessions() as session:
            recording = await visible_recording(session, recording_id, queues)
            length = recording.duration_seconds
            if not at_seconds >= 0 or (length is not None and at_seconds > length + 0.5):
                raise QaInvalid("the moment is outside the recording")
            count = await session.scalar(
                select(func.count())
                .select_from(RecordingComment)
                .where(RecordingComment.recording_id == recording.id)
            )
            if (count or 0) >= MAX_COMMENTS_PER_RECORDING:
                raise QaConflict(f"a recording holds at most {MAX_COMMENTS_PER_RECORDING} comments")
            comment = RecordingComment(
                recording_id=recording.id,
                author=author,
                at_seconds=round(float(at_seconds), 2),
                text=text,
                created_at=utcnow(),
            )
            session.add(comment)
            await session.commit()
            return _comment_view(comment)

    async def delete_comment(
        self,
        recording_id: int,
        comment_id: int,
        *,
        by: str,
        any_author: bool,
        queues: frozenset[str] | None,
    ) -> None:
        async with self._sessions() as session:
            recording = await visible_recording(session, recording_id, queues)
            comment = await session.get(RecordingComment, comment_id)
            if comment is None or comment.recording_id != recording.id:
                raise QaNotFound("no such comment")
            if comment.author != by and not any_author:
                raise QaConflict("only its author (or a supervisor) deletes a comment")
            await session.delete(comment)
            await session.commit()

    async def comments(
        self, recording_id: int, *, queues: frozenset[str] | None
    ) -> list[CommentView]:
        async with self._sessions() as session:
            recording = await visible_recording(session, recording_id, queues)
            rows = await session.scalars(
                select(RecordingComment)
                .where(RecordingComment.recording_id == recording.id)
                .order_by(RecordingComment.at_seconds, RecordingComment.id)
            )
            return [_comment_view(comment) for comment in rows]


async def _refresh_score(session: AsyncSession, recording: Recording) -> None:
    mean = await session.scalar(
        select(func.avg(Evaluation.score)).where(Evaluation.recording_id == recording.id)
    )
    recording.qa_score = None if mean is None else round(float(mean), 1)


def _evaluation_view(evaluation: Evaluation, card_name: str) -> EvaluationView:
    return EvaluationView(
        id=evaluation.id,
        recording_id=evaluation.recording_id,
        scorecard_id=evaluation.scorecard_id,
        scorecard=card_name,
        reviewer=evaluation.reviewer,
        answers=dict(evaluation.answers),
        score=evaluation.score,
        notes=evaluation.notes,
        updated_at=evaluation.updated_at,
    )


def _comment_view(comment: RecordingComment) -> CommentView:
    return CommentView(
        id=comment.id,
        recording_id=comment.recording_id,
        author=comment.author,
        at_seconds=comment.at_seconds,
        text=comment.text,
        created_at=comment.created_at,
    )
