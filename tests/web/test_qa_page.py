"""The QA page in a real browser: Debian's Chromium, headless, driven by Playwright.

A whole in-process center (see test_desk_calls.py) takes a real call: a SIP caller rings the
support queue, amy's page (a simulated one, page_client.py) answers, tones go both ways, amy
holds and pauses the recording, hangs up and wraps up. Then quinn (role qa, given the support
queue) signs in at `/`, lands on `/qa`, finds the call by its number, opens it and plays it
(the <audio> element really plays the WAV, seeking by HTTP ranges), sees the hold on the
waveform's timeline, scores it with the "Customer call" scorecard (the score shown is the
documented formula's), comments at the playhead, and finds the call again by its score (and
not below it). The audit log holds quinn's listen. A supervisor (sam) sees the audit tab and
puts the recording on legal hold; a qa reviewer without the support queue sees nothing of it.

On failure every page's screenshot is written to `test-artifacts/` and its path printed.
Set CALLCENTER_QA_SCREENSHOT=docs/qa.png to refresh the README's picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.models import Recording, User
from callcenter.db.session import create_sessionmaker
from callcenter.services.accounts import AccountService
from callcenter.services.audit import AuditLog
from callcenter.services.subscribers import add_user
from tests.engine.test_acd_calls import (
    REGULAR,
    SUPPORT,
    UNKNOWN,
    VIP,
    hung_up,
    place,
    staff_and_customers,  # noqa: F401 (autouse: amy, ben and two customers)
    until,
)

from .page_client import PageClient, tone
from .test_desk_calls import Desk, answer_next, open_desk, page

pytest_plugins = ["tests.engine.test_bridge"]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path("test-artifacts")
SCORECARD = "Customer call"
# The browsers' time zone: the search's datetime fields are sent with its offset (+05:30).
TIMEZONE = "Asia/Kolkata"

# The reviewers and the supervisor, with web passwords of this test's own: quinn reviews the
# support queue, quentin is a reviewer given no queue, sam supervises, ada administers.
STAFF = {"quinn": "qa", "quentin": "qa", "sam": "supervisor", "ada": "admin"}
PASSWORDS = {user: f"{user}-qa-page-password" for user in STAFF}
CARD = {
    "name": SCORECARD,
    "description": "The standard review of an inbound customer call.",
    "questions": [
        {"id": "greeting", "text": "Greeted the caller and gave their name", "weight": 1},
        {"id": "listening", "text": "Listened and understood the need", "weight": 2,
         "kind": "scale", "max": 5},
        {"id": "resolution", "text": "Resolved the issue or set a clear next step", "weight": 3},
    ],
}  # fmt: skip


async def ensure_qa_staff(database: AsyncEngine, desk: Desk) -> None:
    """The staff above with this test's passwords, the scorecard and quinn's support queue:
    made here when open_desk has not made them already (through the API, as ada)."""
    sessions = create_sessionmaker(database)
    async with sessions.begin() as session:
        for user, role in STAFF.items():
            if await session.scalar(select(User).where(User.username == user)) is None:
                await add_user(session, username=user, role=role, realm="callcenter")
    accounts = AccountService(sessions)
    for user, password in PASSWORDS.items():
        await accounts.set_password(user, password)
    ada = PageClient(desk.base_url)
    try:
        await ada.login("ada", PASSWORDS["ada"])
        cards = await ada.ok("GET", "/api/scorecards")
        if not any(card["name"] == SCORECARD for card in cards):
            await ada.ok("POST", "/api/scorecards", CARD)
        assigned = (await ada.ok("GET", "/api/qa/assignments")).get("quinn", [])
        if "support" not in assigned:
            await ada.ok("PUT", "/api/qa/assignments/quinn", {"queues": [*assigned, "support"]})
        if (await ada.ok("GET", "/api/qa/assignments")).get("quentin"):
            await ada.ok("PUT", "/api/qa/assignments/quentin", {"queues": []})
    finally:
        await ada.close()


async def recorded_call(
    desk: Desk,
    *,
    number: str = VIP,
    talk: float = 2.0,
    hold: bool = True,
    outcome: str = "resolved",
) -> tuple[str, Recording]:
    """A caller rings support; amy answers, tones both ways, (a hold and a paused stretch of
    the recording), hang up, wrap-up with `outcome`. The call id and its closed recording."""
    acd = desk.center.acd
    async with page(desk, "amy") as amy:
        await until(lambda: acd.agent_status("amy").state != "wrap-up", what="amy's wrap-up")
        if acd.agent_status("amy").state != "available":
            await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, number)
        call_id = await answer_next(amy)
        await until(lambda: acd.agent_status("amy").state == "on-call")
        caller.rtp.send_tone(engine_port, 700.0, talk)
        await asyncio.sleep(talk * 0.4)
        amy.send_pcm(tone(1300.0, talk * 0.8))
        await asyncio.sleep(talk * 0.8)
        if hold:
            await amy.ok("PUT", f"/api/calls/{call_id}/hold", {"on": True})
            await asyncio.sleep(1.2)
            await amy.ok("PUT", f"/api/calls/{call_id}/hold", {"on": False})
            caller.rtp.send_tone(engine_port, 500.0, 1.0)
            await asyncio.sleep(1.2)
            await amy.ok("PUT", f"/api/calls/{call_id}/recording", {"paused": True})
            await asyncio.sleep(0.8)
            await amy.ok("PUT", f"/api/calls/{call_id}/recording", {"paused": False})
            amy.send_pcm(tone(900.0, 1.0))
            caller.rtp.send_tone(engine_port, 600.0, 0.6)
            await asyncio.sleep(1.2)
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        await amy.ok(
            "POST", f"/api/calls/{call_id}/wrap-up", {"disposition": outcome, "notes": "ok"}
        )
        caller.close()
    return call_id, await complete_recording(desk, call_id)


async def earlier_calls(desk: Desk) -> None:
    """Two more recordings for the README's picture, one of them scored low by quinn."""
    await recorded_call(desk, number=UNKNOWN, talk=1.0, hold=False, outcome="information")
    _, row = await recorded_call(desk, number=REGULAR, talk=1.5, hold=False, outcome="sale")
    quinn = PageClient(desk.base_url)
    try:
        await quinn.login("quinn", PASSWORDS["quinn"])
        cards = await quinn.ok("GET", "/api/scorecards")
        [card] = [c for c in cards if c["name"] == SCORECARD]
        answers = {q["id"]: (1 if q.get("kind") == "scale" else 0) for q in card["questions"]}
        answers[card["questions"][0]["id"]] = 1
        await quinn.ok(
            "PUT",
            f"/api/recordings/{row.id}/evaluations/{card['id']}",
            {"answers": answers, "notes": "No identity check before the order."},
        )
    finally:
        await quinn.close()


async def complete_recording(desk: Desk, call_id: str) -> Recording:
    sessions = create_sessionmaker(desk.center.database)
    for _ in range(200):
        async with sessions() as session:
            row = await session.scalar(select(Recording).where(Recording.call_id == call_id))
        if row is not None and row.state == "complete" and row.peaks:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"the recording of {call_id} did not complete")


def expected_score(card: dict[str, Any], answers: dict[str, int | None]) -> float:
    """docs/qa-api.md: 100 × Σ weight × answer/top ÷ Σ weight over the answered questions."""
    weighted = weights = 0.0
    for question in card["questions"]:
        value = answers[question["id"]]
        if value is None:
            continue
        top = question["max"] if question.get("kind") == "scale" else 1
        weighted += question["weight"] * value / top
        weights += question["weight"]
    return 100 * weighted / weights


# --- the browser ----------------------------------------------------------------------------


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (as root)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            yield browser
        finally:
            await browser.close()


class Reviewers:
    """The test's browser pages (one context each), for screenshots when it fails."""

    def __init__(self, browser: Browser, desk: Desk) -> None:
        self.browser = browser
        self.desk = desk
        self.pages: dict[str, Page] = {}
        self.contexts: list[BrowserContext] = []

    async def new_page(self, name: str) -> Page:
        context = await self.browser.new_context(
            viewport={"width": 1440, "height": 900}, timezone_id=TIMEZONE
        )
        self.contexts.append(context)
        tab = await context.new_page()
        self.pages[name] = tab
        tab.on("console", lambda m: print(f"[{name} console] {m.type}: {m.text}"))
        tab.on("pageerror", lambda e: print(f"[{name} page error] {e}"))
        return tab

    async def sign_in(self, user: str) -> Page:
        tab = await self.new_page(user)
        await tab.goto(self.desk.base_url + "/")
        await tab.get_by_test_id("login-username").fill(user)
        await tab.get_by_test_id("login-password").fill(PASSWORDS[user])
        await tab.get_by_test_id("login-submit").click()
        if STAFF.get(user) == "supervisor":
            # A supervisor lands on the dashboard, which links to the recordings.
            await tab.wait_for_url("**/supervisor")
            await tab.get_by_test_id("qa-link").click()
        await tab.wait_for_url("**/qa")
        await expect(tab.get_by_test_id("qa-user")).to_have_text(user)
        return tab

    async def screenshots(self, name: str) -> list[Path]:
        ARTIFACTS.mkdir(exist_ok=True)
        shots = []
        for user, opened in self.pages.items():
            path = ARTIFACTS / f"{name}-{user}.png"
            with contextlib.suppress(Exception):
                await opened.screenshot(path=str(path), full_page=True)
                shots.append(path)
        return shots

    async def close(self) -> None:
        for context in self.contexts:
            with contextlib.suppress(Exception):
                await context.close()


@pytest_asyncio.fixture
async def reviewers(
    database: AsyncEngine, tmp_path: Path, browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[Reviewers]:
    async with open_desk(database, tmp_path) as desk:
        await ensure_qa_staff(database, desk)
        opened = Reviewers(browser, desk)
        try:
            yield opened
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                for path in await opened.screenshots(request.node.name):
                    print(f"screenshot of the page at failure: {path.resolve()}")
            await opened.close()


async def search(page: Page, **fields: str) -> None:
    """Fill the search form (every field named, the others cleared) and submit it."""
    form = page.get_by_test_id("qa-search-form")
    for name in ("agent", "number", "since", "until", "min-score", "max-score"):
        await page.get_by_test_id(f"qa-filter-{name}").fill(fields.get(name.replace("-", "_"), ""))
    async with page.expect_response(lambda r: "/api/recordings?" in r.url):
        await form.get_by_test_id("qa-search-submit").click()


async def audio_time(page: Page) -> float:
    return float(await page.get_by_test_id("qa-audio").evaluate("a => a.currentTime"))


@pytest.mark.asyncio
async def test_qa_reviewer_finds_plays_scores_and_comments_on_a_call(
    reviewers: Reviewers,
) -> None:
    desk = reviewers.desk

    # Without a session the page sends the browser to the sign-in page.
    stranger = await reviewers.new_page("stranger")
    await stranger.goto(desk.base_url + "/qa")
    await stranger.wait_for_url(desk.base_url + "/")
    await stranger.context.close()
    del reviewers.pages["stranger"]

    screenshot = os.environ.get("CALLCENTER_QA_SCREENSHOT")
    if screenshot:
        await earlier_calls(desk)
    call_id, row = await recorded_call(desk)
    rid = str(row.id)
    quinn = await reviewers.sign_in("quinn")
    for supervisor_only in ("qa-hold-toggle", "qa-delete", "qa-tab-audit"):
        await expect(quinn.get_by_test_id(supervisor_only)).to_be_hidden()

    # Found by its number (and by its agent); opened.
    await search(quinn, number=VIP)
    rows = quinn.get_by_test_id("qa-result-row")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-recording-id", rid)
    await expect(rows.first.get_by_test_id("qa-result-score")).to_have_text("—")
    await search(quinn, agent="amy")
    found = quinn.locator(f'[data-testid="qa-result-row"][data-recording-id="{rid}"]')
    await expect(found).to_have_count(1)
    await found.click()
    await expect(found).to_have_attribute("aria-current", "true")
    await expect(quinn.get_by_test_id("qa-detail")).to_be_visible()
    await expect(quinn.get_by_test_id("qa-player-caller")).to_have_text(VIP)
    audio = quinn.get_by_test_id("qa-audio")
    await expect(audio).to_have_attribute("src", f"/api/recordings/{rid}/audio")
    await expect(audio).to_have_attribute("preload", "metadata")

    # The timeline's events under the waveform: the hold and the paused stretch.
    events = quinn.get_by_test_id("qa-timeline-event")
    kinds = [await e.get_attribute("data-kind") for e in await events.all()]
    assert kinds[:2] == ["hold", "resume"] and "paused" in kinds and "resumed" in kinds, kinds
    hold = quinn.locator('[data-testid="qa-timeline-event"][data-kind="hold"]')
    assert "Hold" in (await hold.get_attribute("title") or "")
    hold_at = float(await hold.get_attribute("data-at") or "nan")
    assert 1.0 < hold_at < (row.duration_seconds or 0)

    # Play (the space bar on the waveform), and it plays: the server streams the WAV.
    await audio.evaluate(
        "a => { window.qaPlaying = new Promise(r => a.addEventListener('playing', () => r(true),"
        " {once: true})); }"
    )
    await quinn.get_by_test_id("qa-waveform").focus()
    await quinn.keyboard.press(" ")
    assert await quinn.evaluate("window.qaPlaying") is True
    await quinn.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=qa-audio]');"
        " return !a.paused && a.currentTime > 0.3; }",
        timeout=5000,
    )
    await quinn.keyboard.press(" ")
    await expect(audio).to_have_js_property("paused", True)

    # A marker seeks to its moment; so does a click on the waveform.
    await hold.click()
    assert abs(await audio_time(quinn) - hold_at) < 0.25
    wave = quinn.get_by_test_id("qa-waveform")
    box = await wave.bounding_box()
    assert box is not None
    await wave.click(position={"x": box["width"] * 0.25, "y": box["height"] / 2})
    quarter = (row.duration_seconds or 0) * 0.25
    assert abs(await audio_time(quinn) - quarter) < 0.5

    # The scorecard: every question answered, the live score is the documented formula's.
    await expect(quinn.get_by_test_id("qa-scorecard-select")).to_contain_text(SCORECARD)
    card = await (await quinn.request.get(desk.base_url + "/api/scorecards")).json()
    [scorecard] = [c for c in card if c["name"] == SCORECARD]
    answers: dict[str, int | None] = {}
    for question in scorecard["questions"]:
        if question.get("kind") == "scale":
            answers[question["id"]] = max(0, question["max"] - 1)
        else:
            answers[question["id"]] = 0 if not answers else 1
    answers[scorecard["questions"][-1]["id"]] = None  # not applicable
    save = quinn.get_by_test_id("qa-score-save")
    await save.click()  # nothing answered yet: refused on the page
    await expect(quinn.get_by_test_id("qa-score-error")).to_contain_text("Answer every question")
    for qid, value in answers.items():
        choice = "na" if value is None else str(value)
        await quinn.get_by_test_id(f"qa-answer-{qid}-{choice}").click()
    score = expected_score(scorecard, answers)
    await expect(quinn.get_by_test_id("qa-score-preview")).to_have_text(f"{score:.1f}")
    await quinn.get_by_test_id("qa-score-notes").fill("Clear hold, good recovery.")
    await save.click()
    await expect(quinn.get_by_test_id("qa-score-value")).to_have_text(f"{score:.1f}")
    await expect(quinn.get_by_test_id("qa-player-score")).to_have_text(f"QA {score:.1f}")
    await expect(quinn.get_by_test_id("qa-evaluation")).to_have_count(1)
    await expect(found.get_by_test_id("qa-result-score")).to_have_text(f"{score:.1f}")

    # A comment at the playhead (a pin on the waveform); a click on it seeks back there.
    at = await audio_time(quinn)
    await expect(quinn.get_by_test_id("qa-comment-at")).to_have_text(
        f"0:{int(at):02d}.{int(at % 1 * 10)}"
    )
    await quinn.get_by_test_id("qa-comment-text").fill("Agent explains the hold: good.")
    await quinn.get_by_test_id("qa-comment-add").click()
    comment = quinn.get_by_test_id("qa-comment")
    await expect(comment).to_have_count(1)
    await expect(comment).to_contain_text("Agent explains the hold: good.")
    assert abs(float(await comment.get_attribute("data-at") or "nan") - at) < 0.11
    await expect(quinn.get_by_test_id("qa-comment-pin")).to_have_count(1)
    await hold.click()
    await comment.click()
    assert abs(await audio_time(quinn) - at) < 0.25
    # One's own comment can be deleted.
    await quinn.get_by_test_id("qa-comment-text").fill("A slip of the keyboard")
    await quinn.get_by_test_id("qa-comment-add").click()
    await expect(comment).to_have_count(2)
    slip = comment.filter(has_text="A slip of the keyboard")
    await slip.get_by_test_id("qa-comment-delete").click()
    await expect(comment).to_have_count(1)
    await expect(quinn.get_by_test_id("qa-comment-pin")).to_have_count(1)

    # Found by its score, and not below it.
    await search(quinn, number=VIP, min_score=f"{score - 5:.0f}")
    await expect(rows).to_have_count(1)
    await search(quinn, number=VIP, max_score=f"{score - 5:.0f}")
    await expect(rows).to_have_count(0)
    await expect(quinn.get_by_test_id("qa-results-empty")).to_be_visible()
    await expect(quinn.get_by_test_id("qa-search-error")).to_be_empty()
    await search(quinn)
    await expect(found).to_have_count(1)

    # By time: the datetime fields are the browser's local time, sent with its offset.
    local = row.started_at.astimezone(ZoneInfo(TIMEZONE))
    minute_before = (local - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    minute_after = (local + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    await search(quinn, number=VIP, since=minute_before, until=minute_after)
    await expect(rows).to_have_count(1)
    await search(quinn, number=VIP, since=minute_after)
    await expect(rows).to_have_count(0)
    await expect(quinn.get_by_test_id("qa-search-error")).to_be_empty()
    await search(quinn)

    audit = AuditLog(create_sessionmaker(desk.center.database))
    entries = await audit.entries(subject=f"recording:{rid}")
    assert ("quinn", "recording.listen") in [(e.actor, e.action) for e in entries]

    if screenshot:
        await quinn.get_by_test_id("qa-comment-text").fill("")
        await wave.click(position={"x": box["width"] * 0.7, "y": box["height"] / 2})
        await quinn.get_by_test_id("qa-comment-text").fill("Wrap-up summary: clear.")
        await quinn.get_by_test_id("qa-comment-add").click()
        await expect(comment).to_have_count(2)
        await found.click()
        await wave.click(position={"x": box["width"] * 0.42, "y": box["height"] / 2})
        await quinn.mouse.move(0, 0)
        await expect(quinn.get_by_test_id("notice")).to_have_count(0, timeout=6000)
        await quinn.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
        await quinn.screenshot(path=screenshot, full_page=True)

    # The supervisor: every control, the audit tab (quinn listened), and a legal hold.
    sam = await reviewers.sign_in("sam")
    await sam.goto(f"{desk.base_url}/qa#recording={rid}")
    await expect(sam.get_by_test_id("qa-player-caller")).to_have_text(VIP)
    await sam.get_by_test_id("qa-tab-audit").click()
    listened = '[data-testid="qa-audit-entry"][data-action="recording.listen"][data-actor="quinn"]'
    await expect(sam.locator(listened).first).to_be_visible()
    await sam.get_by_test_id("qa-hold-toggle").click()
    await sam.get_by_test_id("qa-hold-reason-input").fill("Case 2026-114")
    await sam.get_by_test_id("qa-hold-confirm").click()
    await expect(sam.get_by_test_id("qa-player-hold")).to_be_visible()
    await expect(sam.get_by_test_id("qa-hold-toggle")).to_have_attribute("aria-pressed", "true")
    await expect(sam.get_by_test_id("qa-delete")).to_be_disabled()
    await expect(sam.get_by_test_id("qa-result-hold")).to_have_count(1)
    # The comment by quinn is listed for sam too, with its delete (a supervisor may).
    await expect(sam.get_by_test_id("qa-comment").first).to_contain_text("Agent explains")
    await expect(sam.get_by_test_id("qa-comment-delete").first).to_be_visible()

    # Released, then deleted (a reason asked for): gone from the search, the row a tombstone.
    await sam.get_by_test_id("qa-hold-toggle").click()
    await sam.get_by_test_id("qa-hold-confirm").click()
    await expect(sam.get_by_test_id("qa-player-hold")).to_be_hidden()
    await sam.get_by_test_id("qa-delete").click()
    await sam.get_by_test_id("qa-delete-confirm").click()
    await expect(sam.get_by_test_id("qa-delete-error")).to_contain_text("Say why")
    await sam.get_by_test_id("qa-delete-reason").fill("Recorded by mistake")
    await sam.get_by_test_id("qa-delete-confirm").click()
    await expect(sam.get_by_test_id("qa-placeholder")).to_be_visible()
    await search(sam, number=VIP)
    await expect(sam.get_by_test_id("qa-results-empty")).to_be_visible()
    async with create_sessionmaker(desk.center.database)() as session:
        tombstone = await session.get(Recording, row.id)
    assert tombstone is not None and tombstone.deleted_at is not None
    actions = [(e.actor, e.action) for e in await audit.entries(subject=f"recording:{rid}")]
    assert ("sam", "recording.delete") in actions, actions
    assert call_id


@pytest.mark.asyncio
async def test_a_reviewer_without_the_queue_sees_none_of_its_recordings(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_desk(database, tmp_path) as desk:
        await ensure_qa_staff(database, desk)
        _, row = await recorded_call(desk, talk=0.6)
        quinn, quentin = PageClient(desk.base_url), PageClient(desk.base_url)
        try:
            await quinn.login("quinn", PASSWORDS["quinn"])
            await quentin.login("quentin", PASSWORDS["quentin"])
            assert [r["id"] for r in await quinn.ok("GET", "/api/recordings")] == [row.id]
            assert await quentin.ok("GET", "/api/recordings") == []
            assert await quentin.ok("GET", f"/api/recordings?number=%2B{VIP[1:]}") == []
            for path in ("", "/audio", "/audio?download=true"):
                answer = await quentin.call("GET", f"/api/recordings/{row.id}{path}")
                assert answer.status_code == 404, (path, answer.text)
            refused = await quentin.call(
                "POST", f"/api/recordings/{row.id}/comments", {"at_seconds": 0, "text": "hi"}
            )
            assert refused.status_code == 404
            entries = await AuditLog(create_sessionmaker(database)).entries(
                subject=f"recording:{row.id}"
            )
            assert "quentin" not in [e.actor for e in entries]
        finally:
            await quinn.close()
            await quentin.close()
