"""The QA API over HTTP (docs/qa-api.md): reviewers limited to their queues, scorecards made by
an administrator and filled in by reviewers, the score searchable, comments, legal hold against
deletion, erasure, and the audit log read back and verified; a real migrated database and
recordings on disk."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.services.accounts import AccountService
from callcenter.services.audit import AuditLog
from callcenter.services.demo import DEMO_SCORECARD
from callcenter.services.qa import QaServices
from callcenter.services.recordings.catalogue import RecordingCatalogue
from callcenter.services.recordings.retention import RecordingRetention
from callcenter.web.app import create_app
from tests.services.qa_fixtures import add_recording

from .conftest import LoggedIn, client_for, csrf, login, make_deps

TOP = {"greeting": 1, "identity": 1, "listening": 5, "resolution": 1, "tone": 5, "closing": 1}


@pytest.fixture
def qa_app(
    accounts: AccountService, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> FastAPI:
    audit = AuditLog(sessions)
    deps = make_deps(accounts)
    return create_app(
        deps.__class__(
            accounts=deps.accounts,
            secret_key=deps.secret_key,
            recordings=RecordingCatalogue(sessions, tmp_path),
            audit=audit,
            qa=QaServices.over(sessions),
            retention=RecordingRetention(sessions, tmp_path, audit),
        )
    )


async def logged(app: FastAPI, role: str, n: int) -> LoggedIn:
    client = client_for(app, address=f"10.0.1.{n}")
    return LoggedIn(role, client, await login(client, role))


async def call(
    who: LoggedIn, method: str, path: str, body: object = None, status: int = 200
) -> httpx.Response:
    answer = await who.client.request(
        method, path, json=body, headers=csrf(who.token) if method != "GET" else None
    )
    assert answer.status_code == status, (method, path, answer.status_code, answer.text)
    return answer


@pytest.mark.asyncio
async def test_a_reviewer_scores_comments_and_finds_by_score_within_their_queues(
    qa_app: FastAPI, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    support = await add_recording(sessions, tmp_path, n=1, queue="support", seconds=3.0)
    billing = await add_recording(sessions, tmp_path, n=2, queue="billing")
    admin, qa, boss = [
        await logged(qa_app, r, n) for n, r in enumerate(("admin", "qa", "supervisor"))
    ]
    try:
        # No queues yet: nothing at all, and a recording's id is as good as unknown.
        assert (await call(qa, "GET", "/api/recordings")).json() == []
        await call(qa, "GET", f"/api/recordings/{support}", status=404)
        await call(qa, "GET", f"/api/recordings/{support}/audio", status=404)
        await call(admin, "PUT", "/api/qa/assignments/qa", {"queues": ["support"]})
        assert (await call(admin, "GET", "/api/qa/assignments")).json() == {"qa": ["support"]}
        await call(admin, "PUT", "/api/qa/assignments/supervisor", {"queues": ["x"]}, 422)
        await call(qa, "PUT", "/api/qa/assignments/qa", {"queues": ["billing"]}, 403)
        found = (await call(qa, "GET", "/api/recordings")).json()
        assert [r["id"] for r in found] == [support]
        assert found[0]["qa_score"] is None and found[0]["legal_hold"] is False
        await call(qa, "GET", f"/api/recordings/{billing}", status=404)
        assert {r["id"] for r in (await call(boss, "GET", "/api/recordings")).json()} == {
            support,
            billing,
        }

        # The administrator defines the form; reviewers read it, and may not change it.
        made = await call(admin, "POST", "/api/scorecards", DEMO_SCORECARD, 201)
        card = made.json()
        assert card["used"] is False and len(card["questions"]) == 6
        await call(qa, "POST", "/api/scorecards", DEMO_SCORECARD, 403)
        await call(admin, "POST", "/api/scorecards", DEMO_SCORECARD, 409)
        bad = {
            **DEMO_SCORECARD,
            "name": "Bad",
            "questions": [{"id": "x", "text": "x", "weight": 0}],
        }
        await call(admin, "POST", "/api/scorecards", bad, 422)
        assert [c["id"] for c in (await call(qa, "GET", "/api/scorecards")).json()] == [card["id"]]

        # Scoring: every question answered, the weighted score back, searchable at once.
        path = f"/api/recordings/{support}/evaluations/{card['id']}"
        await call(qa, "PUT", path, {"answers": {"greeting": 1}}, 422)
        await call(qa, "PUT", path, {"answers": {**TOP, "listening": 9}}, 422)
        answers = {**TOP, "identity": 0, "tone": 4}  # 1 + 0 + 2 + 3 + 1.6 + 1 of 12
        scored = (
            await call(qa, "PUT", path, {"answers": answers, "notes": "ID check missed"})
        ).json()
        assert scored["score"] == pytest.approx(71.7) and scored["reviewer"] == "qa"
        await call(
            qa, "PUT", f"/api/recordings/{billing}/evaluations/{card['id']}", {"answers": TOP}, 404
        )
        assert (await call(admin, "GET", "/api/scorecards")).json()[0]["used"] is True
        edit = {k: DEMO_SCORECARD[k] for k in ("name", "description", "questions")}
        await call(admin, "PUT", f"/api/scorecards/{card['id']}", edit, 409)

        def ids(answer: httpx.Response) -> list[int]:
            return [r["id"] for r in answer.json()]

        assert ids(await call(qa, "GET", "/api/recordings?min_score=70")) == [support]
        assert ids(await call(qa, "GET", "/api/recordings?max_score=70")) == []
        assert ids(await call(qa, "GET", "/api/recordings?scored=true")) == [support]
        assert ids(await call(boss, "GET", "/api/recordings?scored=false")) == [billing]
        await call(qa, "GET", "/api/recordings?min_score=101", status=422)

        # Comments pinned to moments, shown with the evaluations in the detail.
        pin = (
            await call(
                qa,
                "POST",
                f"/api/recordings/{support}/comments",
                {"at_seconds": 1.5, "text": "no ID check"},
                201,
            )
        ).json()
        await call(
            qa, "POST", f"/api/recordings/{support}/comments", {"at_seconds": 99, "text": "x"}, 422
        )
        await call(
            qa, "POST", f"/api/recordings/{support}/comments", {"at_seconds": 1, "text": ""}, 422
        )
        info = (await call(qa, "GET", f"/api/recordings/{support}")).json()
        assert info["qa_score"] == pytest.approx(71.7)
        assert [e["score"] for e in info["evaluations"]] == [pytest.approx(71.7)]
        assert [(c["at_seconds"], c["text"]) for c in info["comments"]] == [(1.5, "no ID check")]
        await call(boss, "DELETE", f"/api/recordings/{support}/comments/{pin['id']}", status=204)
        await call(qa, "DELETE", path, status=204)
        assert (await call(qa, "GET", f"/api/recordings/{support}")).json()["qa_score"] is None
    finally:
        for who in (admin, qa, boss):
            await who.client.aclose()


@pytest.mark.asyncio
async def test_hold_blocks_deletion_erasure_spares_held_and_the_audit_log_tells_it_all(
    qa_app: FastAPI, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    one = await add_recording(sessions, tmp_path, n=1, caller="+441632960001")
    two = await add_recording(sessions, tmp_path, n=2, caller="+441632960001")
    three = await add_recording(sessions, tmp_path, n=3, caller="+441632960001")
    admin, qa, boss = [
        await logged(qa_app, r, n) for n, r in enumerate(("admin", "qa", "supervisor"))
    ]
    try:
        await call(boss, "GET", f"/api/recordings/{one}/audio")  # a listen
        await call(qa, "PUT", f"/api/recordings/{one}/legal-hold", {"on": True, "reason": "x"}, 403)
        await call(boss, "PUT", f"/api/recordings/{one}/legal-hold", {"on": True}, 422)
        held = await call(
            boss, "PUT", f"/api/recordings/{one}/legal-hold", {"on": True, "reason": "claim 7"}
        )
        assert held.json()["legal_hold"] is True and held.json()["legal_hold_reason"] == "claim 7"
        refused = await call(boss, "DELETE", f"/api/recordings/{one}?reason=tidy", status=409)
        assert "legal hold" in refused.json()["detail"]
        assert [
            r["id"] for r in (await call(boss, "GET", "/api/recordings?legal_hold=true")).json()
        ] == [one]

        await call(qa, "DELETE", f"/api/recordings/{two}", status=403)
        await call(boss, "DELETE", f"/api/recordings/{two}?reason=test%20call", status=204)
        await call(boss, "GET", f"/api/recordings/{two}", status=404)
        await call(boss, "GET", f"/api/recordings/{two}/audio", status=404)
        assert two not in [r["id"] for r in (await call(boss, "GET", "/api/recordings")).json()]

        await call(boss, "POST", "/api/erasures", {"number": "+441632960001", "reason": "x"}, 403)
        await call(admin, "POST", "/api/erasures", {"reason": "x"}, 422)
        await call(
            admin,
            "POST",
            "/api/erasures",
            {"number": "+441632960001", "customer_id": 1, "reason": "x"},
            422,
        )
        done = (
            await call(
                admin, "POST", "/api/erasures", {"number": "+441632960001", "reason": "GDPR 17"}
            )
        ).json()
        assert done == {"erased": [three], "held": [one], "failed": []}

        entries = (await call(boss, "GET", f"/api/audit?subject=recording:{one}")).json()
        assert [(e["actor"], e["action"]) for e in entries] == [
            ("supervisor", "legal-hold.set"),
            ("supervisor", "recording.listen"),
        ]
        await call(qa, "GET", "/api/audit", status=403)
        everything = (await call(admin, "GET", "/api/audit?limit=100")).json()
        assert {e["action"] for e in everything} == {
            "recording.listen",
            "legal-hold.set",
            "recording.delete",
            "erasure",
        }
        verified = (await call(admin, "GET", "/api/audit/verify")).json()
        assert verified["ok"] is True and verified["entries"] == len(everything)
    finally:
        for who in (admin, qa, boss):
            await who.client.aclose()
