"""Scorecards: the QA forms an administrator defines, and how a filled-in card is scored.

Owns the shape of a question (validated, bounded), the weighted score of a set of answers, and
the stored cards (made, edited while unused, retired). A card that scored any recording is never
edited, because its evaluations would silently change meaning: it is retired and replaced.
Must not know HTTP or who may call what (the routes check roles).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import Label, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import Evaluation, Scorecard

from .errors import QaConflict, QaInvalid, QaNotFound

MAX_QUESTIONS: Final = 50
MAX_WEIGHT: Final = 100
MAX_SCALE: Final = 10
MAX_TEXT: Final = 500
MAX_NAME: Final = 128
MAX_DESCRIPTION: Final = 2000
QUESTION_ID: Final = re.compile(r"[a-z0-9_-]{1,40}")

Kind = Literal["yes-no", "scale"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    id: str
    text: str
    weight: int
    kind: Kind
    max: int = 1  # the top answer: 1 for yes-no

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "id": self.id,
            "text": self.text,
            "weight": self.weight,
            "kind": self.kind,
        }
        if self.kind == "scale":
            out["max"] = self.max
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ScorecardView:
    id: int
    name: str
    description: str
    questions: tuple[Question, ...]
    active: bool
    used: bool


def _whole(value: object, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QaInvalid(f"{what} must be a whole number {low}..{high}")
    return value


def parse_questions(raw: object) -> tuple[Question, ...]:
    """The questions of a card, or QaInvalid naming the first problem."""
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise QaInvalid("questions must be a list")
    if not 1 <= len(raw) <= MAX_QUESTIONS:
        raise QaInvalid(f"a scorecard has 1 to {MAX_QUESTIONS} questions")
    questions: list[Question] = []
    seen: set[str] = set()
    for number, item in enumerate(raw, 1):
        where = f"question {number}"
        if not isinstance(item, Mapping):
            raise QaInvalid(f"{where}: a question is an object")
        unknown = set(item) - {"id", "text", "weight", "kind", "max"}
        if unknown:
            raise QaInvalid(f"{where}: unknown field {sorted(unknown)[0]!r}")
        qid = item.get("id")
        if not isinstance(qid, str) or not QUESTION_ID.fullmatch(qid):
            raise QaInvalid(f"{where}: id is 1-40 of a-z 0-9 _ -")
        if qid in seen:
            raise QaInvalid(f"{where}: id {qid!r} is used twice")
        seen.add(qid)
        text = item.get("text")
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= MAX_TEXT:
            raise QaInvalid(f"{where}: text is 1-{MAX_TEXT} characters")
        weight = _whole(item.get("weight", 1), 1, MAX_WEIGHT, f"{where}: weight")
        kind = item.get("kind", "yes-no")
        if kind == "yes-no":
            if "max" in item and item["max"] != 1:
                raise QaInvalid(f"{where}: a yes-no question has no max")
            questions.append(Question(id=qid, text=text.strip(), weight=weight, kind="yes-no"))
        elif kind == "scale":
            top = _whole(item.get("max"), 1, MAX_SCALE, f"{where}: max")
            questions.append(
                Question(id=qid, text=text.strip(), weight=weight, kind="scale", max=top)
            )
        else:
            raise QaInvalid(f"{where}: kind is 'yes-no' or 'scale'")
    return tuple(questions)


def score(questions: Sequence[Question], answers: Mapping[str, object]) -> float:
    """100 x the weighted share of the top answers, over the questions that apply (0..100).

    Every question must be answered: a whole number 0..top, or None for "not applicable"
    (left out of both sums). A card answered all "not applicable" has no score (QaInvalid).
    """
    known = {q.id for q in questions}
    extra = set(answers) - known
    if extra:
        raise QaInvalid(f"no question {sorted(extra)[0]!r} on this scorecard")
    earned = 0.0
    possible = 0
    for question in questions:
        if question.id not in answers:
            raise QaInvalid(f"question {question.id!r} is not answered")
        value = answers[question.id]
        if value is None:
            continue
        answer = _whole(value, 0, question.max, f"the answer to {question.id!r}")
        earned += question.weight * answer / question.max
        possible += question.weight
    if possible == 0:
        raise QaInvalid("every question is 'not applicable': nothing to score")
    return round(100.0 * earned / possible, 1)


def _name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise QaInvalid(f"a scorecard's name is 1-{MAX_NAME} characters")
    return name


def _description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise QaInvalid(f"a description is at most {MAX_DESCRIPTION} characters")
    return description


class Scorecards:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def list(self, *, retired: bool = False) -> list[ScorecardView]:
        statement = select(Scorecard, _used()).order_by(Scorecard.name)
        if not retired:
            statement = statement.where(Scorecard.active)
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
        return [_view(card, used) for card, used in rows]

    async def get(self, card_id: int) -> ScorecardView:
        async with self._sessions() as session:
            row = (
                await session.execute(select(Scorecard, _used()).where(Scorecard.id == card_id))
            ).first()
        if row is None:
            raise QaNotFound("no such scorecard")
        return _view(row[0], row[1])

    async def create(
        self, *, name: str, description: str, questions: object, by: str
    ) -> ScorecardView:
        parsed = parse_questions(questions)
        card = Scorecard(
            name=_name(name),
            description=_description(description),
            questions=[q.as_dict() for q in parsed],
            active=True,
            created_by=by,
        )
        async with self._sessions() as session:
            session.add(card)
            try:
                await session.commit()
            except IntegrityError:
                raise QaConflict(f"a scorecard named {card.name!r} exists") from None
            return _view(card, False)

    async def update(
        self, card_id: int, *, name: str, description: str, questions: object
    ) -> ScorecardView:
        parsed = parse_questions(questions)
        async with self._sessions() as session:
            card = await session.get(Scorecard, card_id, with_for_update=True)
            if card is None:
                raise QaNotFound("no such scorecard")
            if await _is_used(session, card_id):
                raise QaConflict(
                    "recordings were scored with this scorecard: retire it and make a new one"
                )
            card.name = _name(name)
            card.description = _description(description)
            card.questions = [q.as_dict() for q in parsed]
            try:
                await session.commit()
            except IntegrityError:
                raise QaConflict(f"a scorecard named {card.name!r} exists") from None
            return _view(card, False)

    async def set_active(self, card_id: int, active: bool) -> ScorecardView:
        async with self._sessions() as session:
            card = await session.get(Scorecard, card_id)
            if card is None:
                raise QaNotFound("no such scorecard")
            card.active = active
            await session.commit()
            return _view(card, await _is_used(session, card_id))


def questions_of(card: Scorecard) -> tuple[Question, ...]:
    """A stored card's questions (validated when stored; re-read without trusting the row)."""
    return parse_questions(card.questions)


def _used() -> Label[bool]:
    return (
        exists().where(Evaluation.scorecard_id == Scorecard.id).correlate(Scorecard).label("used")
    )


async def _is_used(session: AsyncSession, card_id: int) -> bool:
    found = await session.scalar(select(exists().where(Evaluation.scorecard_id == card_id)))
    return bool(found)


def _view(card: Scorecard, used: bool) -> ScorecardView:
    return ScorecardView(
        id=card.id,
        name=card.name,
        description=card.description,
        questions=questions_of(card),
        active=card.active,
        used=bool(used),
    )
