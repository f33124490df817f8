"""QA: scorecards (validated, scored, frozen once used), evaluations keeping the recording's
mean score, comments pinned to moments, and reviewers limited to their queues; on a real
migrated SQLite database with recordings on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import Recording
from callcenter.services.demo import DEMO_SCORECARD
from callcenter.services.qa import (
    QaConflict,
    QaInvalid,
    QaNotFound,
    QaServices,
    Question,
    parse_questions,
    score,
)
from callcenter.services.qa.scorecards import Kind

from .qa_fixtures import add_recording

CARD: list[dict[str, Any]] = [
    {"id": "greeting", "text": "Greeted", "weight": 1},
    {"id": "empathy", "text": "Showed empathy", "kind": "scale", "max": 5, "weight": 2},
    {"id": "resolved", "text": "Resolved", "weight": 3},
]


# --- the form ----------------------------------------------------------------------------------


def test_the_demo_scorecard_is_valid() -> None:
    questions = parse_questions(DEMO_SCORECARD["questions"])
    assert len(questions) == 6 and {q.kind for q in questions} == {"yes-no", "scale"}


@pytest.mark.parametrize(
    ("questions", "problem"),
    [
        ([], "1 to 50"),
        ("greeting", "a list"),
        ([{"id": "A b", "text": "x"}], "id is"),
        ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], "used twice"),
        ([{"id": "a", "text": "   "}], "text is"),
        ([{"id": "a", "text": "x", "weight": 0}], "weight"),
        ([{"id": "a", "text": "x", "weight": 1.5}], "weight"),
        ([{"id": "a", "text": "x", "weight": True}], "weight"),
        ([{"id": "a", "text": "x", "kind": "scale"}], "max"),
        ([{"id": "a", "text": "x", "kind": "scale", "max": 11}], "max"),
        ([{"id": "a", "text": "x", "kind": "stars"}], "kind"),
        ([{"id": "a", "text": "x", "max": 3}], "no max"),
        ([{"id": "a", "text": "x", "colour": "red"}], "unknown field"),
        ([{"id": f"q{n}", "text": "x"} for n in range(51)], "1 to 50"),
        (["a question"], "an object"),
    ],
)
def test_a_malformed_scorecard_is_refused_with_the_reason(questions: Any, problem: str) -> None:
    with pytest.raises(QaInvalid, match=problem):
        parse_questions(questions)


def test_the_score_is_the_weighted_share_of_the_top_answers() -> None:
    questions = parse_questions(CARD)
    assert score(questions, {"greeting": 1, "empathy": 5, "resolved": 1}) == 100.0
    assert score(questions, {"greeting": 0, "empathy": 0, "resolved": 0}) == 0.0
    # 1x1 + 2x(4/5) + 3x0 over 6 = 2.6/6
    assert score(questions, {"greeting": 1, "empathy": 4, "resolved": 0}) == pytest.approx(43.3)
    # Not applicable leaves the question out of both sums: 3 of 4.
    assert score(questions, {"greeting": 1, "empathy": None, "resolved": 1}) == 100.0


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        ({"greeting": 1, "empathy": 3}, "'resolved' is not answered"),
        ({"greeting": 1, "empathy": 6, "resolved": 1}, "0..5"),
        ({"greeting": 2, "empathy": 1, "resolved": 1}, "0..1"),
        ({"greeting": -1, "empathy": 1, "resolved": 1}, "0..1"),
        ({"greeting": True, "empathy": 1, "resolved": 1}, "whole number"),
        ({"greeting": 0.5, "empathy": 1, "resolved": 1}, "whole number"),
        ({"greeting": 1, "empathy": 1, "resolved": 1, "extra": 1}, "no question 'extra'"),
        ({"greeting": None, "empathy": None, "resolved": None}, "not applicable"),
    ],
)
def test_bad_answers_are_refused(answers: dict[str, object], problem: str) -> None:
    with pytest.raises(QaInvalid, match=problem):
        score(parse_questions(CARD), answers)


@st.composite
def card_and_answers(draw: st.DrawFn) -> tuple[list[Question], dict[str, object]]:
    count = draw(st.integers(1, 8))
    questions: list[Question] = []
    answers: dict[str, object] = {}
    for n in range(count):
        top = draw(st.sampled_from([1, 1, 3, 5, 10]))
        kind: Kind = "yes-no" if top == 1 else "scale"
        questions.append(
            Question(id=f"q{n}", text="?", weight=draw(st.integers(1, 100)), kind=kind, max=top)
        )
        answers[f"q{n}"] = draw(st.one_of(st.none(), st.integers(0, top)))
    if all(a is None for a in answers.values()):
        answers["q0"] = 0
    return questions, answers


@given(card_and_answers())
def test_a_score_is_between_0_and_100_and_monotone_in_each_answer(
    drawn: tuple[list[Question], dict[str, object]],
) -> None:
    questions, answers = drawn
    result = score(questions, answers)
    assert 0.0 <= result <= 100.0
    for question in questions:
        value = answers[question.id]
        if isinstance(value, int) and value < question.max:
            better = score(questions, {**answers, question.id: value + 1})
            assert better >= result


# --- stored cards --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_card_is_edited_until_used_then_only_retired(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    qa = QaServices.over(sessions)
    card = await qa.scorecards.create(name="Calls", description="", questions=CARD, by="ada")
    with pytest.raises(QaConflict, match="exists"):
        await qa.scorecards.create(name="Calls", description="", questions=CARD, by="ada")
    edited = await qa.scorecards.update(
        card.id, name="Calls v1", description="first", questions=CARD[:2]
    )
    assert edited.name == "Calls v1" and len(edited.questions) == 2 and not edited.used

    recording = await add_recording(sessions, tmp_path, n=1)
    await qa.reviews.evaluate(
        recording,
        card.id,
        reviewer="quinn",
        answers={"greeting": 1, "empathy": 5},
        notes="",
        queues=None,
    )
    assert (await qa.scorecards.get(card.id)).used
    with pytest.raises(QaConflict, match="retire it"):
        await qa.scorecards.update(card.id, name="Calls v1", description="", questions=CARD)
    retired = await qa.scorecards.set_active(card.id, False)
    assert not retired.active and retired.used
    assert await qa.scorecards.list() == []
    assert [c.id for c in await qa.scorecards.list(retired=True)] == [card.id]
    with pytest.raises(QaConflict, match="retired"):
        await qa.reviews.evaluate(
            recording,
            card.id,
            reviewer="sam",
            answers={"greeting": 1, "empathy": 5},
            notes="",
            queues=None,
        )
    with pytest.raises(QaNotFound):
        await qa.scorecards.get(999)


# --- evaluations and the recording's score -------------------------------------------------------


@pytest.mark.asyncio
async def test_the_recording_score_is_the_mean_of_its_evaluations(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    qa = QaServices.over(sessions)
    card = await qa.scorecards.create(name="Calls", description="", questions=CARD, by="ada")
    recording = await add_recording(sessions, tmp_path, n=1)
    top = {"greeting": 1, "empathy": 5, "resolved": 1}
    low = {"greeting": 1, "empathy": 0, "resolved": 0}

    async def stored() -> float | None:
        async with sessions() as session:
            row = await session.get(Recording, recording)
            assert row is not None
            return row.qa_score

    first = await qa.reviews.evaluate(
        recording, card.id, reviewer="quinn", answers=top, notes="great", queues=None
    )
    assert first.score == 100.0 and first.scorecard == "Calls" and await stored() == 100.0
    await qa.reviews.evaluate(
        recording, card.id, reviewer="sam", answers=low, notes="", queues=None
    )
    assert await stored() == pytest.approx((100.0 + 16.7) / 2, abs=0.1)
    # Saving again replaces the reviewer's own evaluation.
    again = await qa.reviews.evaluate(
        recording, card.id, reviewer="quinn", answers=low, notes="on second listen", queues=None
    )
    assert again.id == first.id and again.notes == "on second listen"
    assert await stored() == pytest.approx(16.7)
    listed = await qa.reviews.evaluations(recording, queues=None)
    assert sorted(e.reviewer for e in listed) == ["quinn", "sam"]
    await qa.reviews.withdraw(recording, card.id, reviewer="sam", queues=None)
    await qa.reviews.withdraw(recording, card.id, reviewer="quinn", queues=None)
    assert await stored() is None
    with pytest.raises(QaNotFound):
        await qa.reviews.withdraw(recording, card.id, reviewer="quinn", queues=None)
    with pytest.raises(QaInvalid):
        await qa.reviews.evaluate(
            recording, card.id, reviewer="quinn", answers={"greeting": 1}, notes="", queues=None
        )
    with pytest.raises(QaNotFound, match="scorecard"):
        await qa.reviews.evaluate(
            recording, 99, reviewer="quinn", answers=top, notes="", queues=None
        )


@pytest.mark.asyncio
async def test_comments_are_pinned_inside_the_recording_and_deleted_by_their_author(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    qa = QaServices.over(sessions)
    recording = await add_recording(sessions, tmp_path, n=1, seconds=3.0)
    late = await qa.reviews.comment(
        recording, author="quinn", at_seconds=2.5, text=" hold here ", queues=None
    )
    early = await qa.reviews.comment(
        recording, author="sam", at_seconds=0.25, text="greeting", queues=None
    )
    assert late.text == "hold here"
    assert [c.id for c in await qa.reviews.comments(recording, queues=None)] == [early.id, late.id]
    for at, text in ((-1.0, "x"), (60.0, "x"), (float("nan"), "x"), (1.0, "  "), (1.0, "x" * 2001)):
        with pytest.raises(QaInvalid):
            await qa.reviews.comment(
                recording, author="quinn", at_seconds=at, text=text, queues=None
            )
    with pytest.raises(QaConflict, match="author"):
        await qa.reviews.delete_comment(
            recording, early.id, by="quinn", any_author=False, queues=None
        )
    await qa.reviews.delete_comment(recording, early.id, by="quinn", any_author=True, queues=None)
    await qa.reviews.delete_comment(recording, late.id, by="quinn", any_author=False, queues=None)
    assert await qa.reviews.comments(recording, queues=None) == []
    with pytest.raises(QaNotFound):
        await qa.reviews.delete_comment(
            recording, late.id, by="quinn", any_author=True, queues=None
        )


# --- who sees what -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_reviewer_sees_only_their_queues_and_the_rest_does_not_exist_for_them(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    qa = QaServices.over(sessions)
    assert await qa.assignments.visible_queues("sam", "supervisor") is None
    assert await qa.assignments.visible_queues("quinn", "qa") == frozenset()
    assert await qa.assignments.assign("quinn", ["support", "sales", "support"]) == [
        "sales",
        "support",
    ]
    quinn = await qa.assignments.visible_queues("quinn", "qa")
    assert quinn == frozenset({"support", "sales"})
    assert await qa.assignments.all() == {"quentin": [], "quinn": ["sales", "support"]}
    with pytest.raises(QaInvalid, match="only qa users"):
        await qa.assignments.assign("sam", ["support"])
    with pytest.raises(QaNotFound):
        await qa.assignments.assign("nobody", ["support"])
    with pytest.raises(QaInvalid, match="queue name"):
        await qa.assignments.assign("quinn", ["bad queue"])

    card = await qa.scorecards.create(name="Calls", description="", questions=CARD, by="ada")
    theirs = await add_recording(sessions, tmp_path, n=1, queue="support")
    other = await add_recording(sessions, tmp_path, n=2, queue="billing")
    direct = await add_recording(sessions, tmp_path, n=3, with_record=False)
    answers = {"greeting": 1, "empathy": 5, "resolved": 1}
    await qa.reviews.evaluate(
        theirs, card.id, reviewer="quinn", answers=answers, notes="", queues=quinn
    )
    for hidden in (other, direct):
        with pytest.raises(QaNotFound, match="no such recording"):
            await qa.reviews.evaluate(
                hidden, card.id, reviewer="quinn", answers=answers, notes="", queues=quinn
            )
        with pytest.raises(QaNotFound, match="no such recording"):
            await qa.reviews.comment(hidden, author="quinn", at_seconds=0, text="x", queues=quinn)
        with pytest.raises(QaNotFound, match="no such recording"):
            await qa.reviews.comments(hidden, queues=quinn)
        # A supervisor sees them all.
        await qa.reviews.comment(hidden, author="sam", at_seconds=0, text="x", queues=None)
