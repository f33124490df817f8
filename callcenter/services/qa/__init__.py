"""Quality assurance of recorded calls: scorecards, evaluations, comments, and who sees what."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .access import Assignments, visible_recording
from .errors import QaConflict, QaError, QaInvalid, QaNotFound
from .reviews import CommentView, EvaluationView, Reviews
from .scorecards import Question, Scorecards, ScorecardView, parse_questions, score


@dataclass(frozen=True, slots=True)
class QaServices:
    scorecards: Scorecards
    reviews: Reviews
    assignments: Assignments

    @classmethod
    def over(cls, sessions: async_sessionmaker[AsyncSession]) -> QaServices:
        return cls(Scorecards(sessions), Reviews(sessions), Assignments(sessions))


__all__ = [
    "Assignments",
    "CommentView",
    "EvaluationView",
    "QaConflict",
    "QaError",
    "QaInvalid",
    "QaNotFound",
    "QaServices",
    "Question",
    "Reviews",
    "ScorecardView",
    "Scorecards",
    "parse_questions",
    "score",
    "visible_recording",
]
