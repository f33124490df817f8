"""QA administration: scorecards (administrators define them; reviewers read them) and the
queues each qa reviewer is given (docs/qa-api.md)."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field

from ...services.accounts import Principal
from ...services.qa import ScorecardView
from ..deps import require_roles
from .recordings import Qa, qa_errors

router = APIRouter(prefix="/api", tags=["qa"])

Reader = Annotated[Principal, require_roles("qa", "supervisor", "admin")]
Admin = Annotated[Principal, require_roles("admin")]
CardId = Annotated[int, Path(ge=1)]


class ScorecardItem(BaseModel):
    id: int
    name: str
    description: str
    active: bool
    used: bool
    questions: list[dict[str, Any]]

    @classmethod
    def of(cls, card: ScorecardView) -> "ScorecardItem":
        return cls(
            id=card.id,
            name=card.name,
            description=card.description,
            active=card.active,
            used=card.used,
            questions=[q.as_dict() for q in card.questions],
        )


class ScorecardBody(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=2000)
    # Checked by the service (ids, weights, kinds, bounds); the size is bounded here.
    questions: list[dict[str, Any]] = Field(min_length=1, max_length=50)


class ActiveBody(BaseModel):
    active: bool


@router.get("/scorecards")
async def scorecards(user: Reader, qa: Qa, retired: bool = False) -> list[ScorecardItem]:
    """The active scorecards (with `retired=true`, the retired ones too)."""
    return [ScorecardItem.of(card) for card in await qa.scorecards.list(retired=retired)]


@router.post("/scorecards", status_code=status.HTTP_201_CREATED)
async def create_scorecard(body: ScorecardBody, user: Admin, qa: Qa) -> ScorecardItem:
    with qa_errors():
        card = await qa.scorecards.create(
            name=body.name, description=body.description, questions=body.questions, by=user.username
        )
    return ScorecardItem.of(card)


@router.put("/scorecards/{card_id}")
async def update_scorecard(
    card_id: CardId, body: ScorecardBody, user: Admin, qa: Qa
) -> ScorecardItem:
    """Edit a scorecard nobody has used yet (409 once used: retire it, make a new one)."""
    with qa_errors():
        card = await qa.scorecards.update(
            card_id, name=body.name, description=body.description, questions=body.questions
        )
    return ScorecardItem.of(card)


@router.put("/scorecards/{card_id}/active")
async def activate_scorecard(
    card_id: CardId, body: ActiveBody, user: Admin, qa: Qa
) -> ScorecardItem:
    with qa_errors():
        return ScorecardItem.of(await qa.scorecards.set_active(card_id, body.active))


class AssignmentBody(BaseModel):
    queues: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(max_length=500)


class Assignment(BaseModel):
    username: str
    queues: list[str]


@router.get("/qa/assignments")
async def assignments(user: Admin, qa: Qa) -> dict[str, list[str]]:
    """Every qa user and the queues whose recordings they see."""
    return await qa.assignments.all()


@router.put("/qa/assignments/{username}")
async def assign(
    username: Annotated[str, Path(min_length=1, max_length=64)],
    body: AssignmentBody,
    user: Admin,
    qa: Qa,
) -> Assignment:
    with qa_errors():
        queues = await qa.assignments.assign(username, body.queues)
    return Assignment(username=username, queues=queues)


__all__ = ["HTTPException", "router"]
