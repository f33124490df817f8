"""The supervisor dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

The page is the shipped `callcenter/web/static/supervisor.html`, served by the app in front of
a whole in-process center (see test_desk_calls.py). The supervisor's microphone is Chromium's
fake capture device playing a 2530 Hz WAV; the caller is a SIP phone with an RTP peer sending
650 Hz; the agent amy is a `PageClient` (the agent page's API, in Python) sending 1230 Hz.
Proven by measurement: the supervisor signs in and lands on /supervisor, sees the call with
its queue and agent, clicks Listen and the page's received audio (`window.softphoneDebug`)
holds the caller's and the agent's tones while neither hears the supervisor; Whisper (the
same page call, no re-dial): amy hears the microphone, the caller does not; Barge: both do;
the page's monitoring log shows each step, and Leave ends the page's call.

On failure every page's screenshot is written to `test-artifacts/`. `Dashboard` serves the
conference's supervisor test too (test_conference_page.py), whose `Dashboard.screenshot()`
saves the README's picture of the dashboard during a conference when
CALLCENTER_SUPERVISOR_SCREENSHOT=docs/supervisor.png is set (this test takes none: it would
overwrite that picture with a plain call).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.media import PCM
from tests.engine.test_acd_calls import (
    REGULAR,
    SUPPORT,
    VIP,
    place,
    staff_and_customers,  # noqa: F401 (autouse: amy, ben and two customers)
    until,
)

from .page_client import PageClient, tone
from .test_agent_page import ARTIFACTS, CHROMIUM, launch_chromium, microphone_wav
from .test_desk_calls import PASSWORDS, Desk, answer_next, open_desk, page
from .tones import ABSENT, HEARD, amplitude

pytest_plugins = ["tests.engine.test_bridge"]

CALLER, AMY, MIC = 650.0, 1230.0, 2530.0
SCREENSHOT_ENV = "CALLCENTER_SUPERVISOR_SCREENSHOT"


@pytest_asyncio.fixture
async def supervisor_browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium whose fake microphone plays MIC (a browser of its own: the fake capture
    device is one file per browser, and agents' pages in other tests use another tone)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (as root)")
    wav = microphone_wav(tmp_path / "supervisor-mic.wav", frequency=MIC)
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, wav)
        try:
            yield browser
        finally:
            await browser.close()


class Dashboard:
    """The supervisor's page (and any other page the test opens), for screenshots."""

    def __init__(self, browser: Browser, desk: Desk) -> None:
        self.browser = browser
        self.desk = desk
        self.pages: dict[str, Page] = {}
        self.contexts: list[BrowserContext] = []

    async def sign_in(self, user: str = "sam") -> Page:
        context = await self.browser.new_context(viewport={"width": 1440, "height": 900})
        await context.grant_permissions(["microphone"], origin=self.desk.base_url)
        self.contexts.append(context)
        tab = await context.new_page()
        self.pages[user] = tab
        tab.on("console", lambda m: print(f"[{user} console] {m.type}: {m.text}"))
        tab.on("pageerror", lambda e: print(f"[{user} page error] {e}"))
        await tab.goto(self.desk.base_url + "/")
        await tab.get_by_test_id("login-username").fill(user)
        await tab.get_by_test_id("login-password").fill(PASSWORDS[user])
        await tab.get_by_test_id("login-submit").click()
        await tab.wait_for_url("**/supervisor")
        await expect(tab.get_by_test_id("sv-status")).to_have_attribute(
            "data-status", "connected", timeout=5000
        )
        return tab

    async def screenshot(self, user: str = "sam") -> Path | None:
        """The dashboard's picture at this point of the scene, when the environment asks
        for one (CALLCENTER_SUPERVISOR_SCREENSHOT=path)."""
        path = os.environ.get(SCREENSHOT_ENV)
        if not path:
            return None
        tab = self.pages[user]
        await asyncio.sleep(1.2)  # the timers and the audio meter move once a second or so
        await tab.mouse.move(0, 0)
        await tab.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
        await tab.screenshot(path=path, full_page=True)
        print(f"dashboard screenshot: {Path(path).resolve()}")
        return Path(path)

    async def failure_screenshots(self, name: str) -> list[Path]:
        ARTIFACTS.mkdir(exist_ok=True)
        shots = []
        for user, tab in self.pages.items():
            path = ARTIFACTS / f"{name}-{user}.png"
            with contextlib.suppress(Exception):
                await tab.screenshot(path=str(path), full_page=True)
                shots.append(path)
        return shots

    async def close(self) -> None:
        for context in self.contexts:
            with contextlib.suppress(Exception):
                await context.close()


@pytest_asyncio.fixture
async def dashboard(
    database: AsyncEngine,
    tmp_path: Path,
    supervisor_browser: Browser,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Dashboard]:
    async with open_desk(database, tmp_path) as desk:
        opened = Dashboard(supervisor_browser, desk)
        try:
            yield opened
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                for path in await opened.failure_screenshots(request.node.name):
                    print(f"screenshot of the page at failure: {path.resolve()}")
            await opened.close()


async def page_audio(tab: Page) -> PCM:
    samples = await tab.evaluate("Array.from(window.softphoneDebug.lastReceived(1000))")
    return np.asarray(samples, dtype=np.int16)


def levels(pcm: PCM) -> dict[str, int]:
    return {
        name: round(amplitude(pcm, f))
        for name, f in (("caller", CALLER), ("amy", AMY), ("mic", MIC))
    }


async def page_hears(tab: Page, expected: set[float], timeout: float = 3.0) -> dict[str, int]:
    """The page's last second of received audio holds exactly the `expected` tones."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    found: dict[str, int] = {}
    while loop.time() < deadline:
        audio = await page_audio(tab)
        if len(audio) >= 6000:
            found = levels(audio)
            there = {f for f in (CALLER, AMY, MIC) if amplitude(audio, f) > HEARD}
            gone = all(amplitude(audio, f) < ABSENT for f in {CALLER, AMY, MIC} - expected)
            if there == expected and gone:
                return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"the page does not hear exactly {sorted(expected)} Hz: {found}")


async def hears_then(pcm_of: Any, expected: set[float], what: str, settle: float = 0.6) -> None:
    """After `settle` s, the last 0.8 s at `pcm_of()` holds exactly the `expected` tones."""
    await asyncio.sleep(settle)
    mark = len(pcm_of())
    await asyncio.sleep(0.8)
    pcm = pcm_of()[mark:]
    assert len(pcm) >= 5000, f"{what}: too little audio"
    found = levels(pcm)
    for name, frequency in (("caller", CALLER), ("amy", AMY), ("mic", MIC)):
        level = amplitude(pcm, frequency)
        if frequency in expected:
            assert level > HEARD, f"{what} does not hear {name}: {found}"
        else:
            assert level < ABSENT, f"{what} hears {name}: {found}"
    print(f"{what}: {found}")


@pytest.mark.asyncio
async def test_supervisor_page_listens_whispers_and_barges(dashboard: Dashboard) -> None:
    desk = dashboard.desk
    acd = desk.center.acd
    async with page(desk, "amy") as amy, page(desk, "ben") as ben:
        sam = await dashboard.sign_in("sam")
        await expect(sam.get_by_test_id("sv-user")).to_have_text("sam")
        await expect(sam.get_by_test_id("sv-agent")).to_have_count(2)
        await expect(sam.locator('[data-testid="sv-queue"][data-queue="support"]')).to_be_visible()

        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
        call_id = await answer_next(amy)
        await until(lambda: acd.agent_status("amy").state == "on-call")
        # A second caller waits (ben is away): the queue tile shows it.
        await ben.ok("PUT", "/api/agent/state", {"state": "away", "reason": "Coaching"})
        waiting, _ = await place(desk.center, SUPPORT, VIP)

        row = sam.locator(f'[data-testid="sv-call"][data-call-id="{call_id}"]')
        await expect(row).to_be_visible(timeout=3000)
        await expect(row.get_by_test_id("sv-call-state")).to_have_text("Talking", timeout=3000)
        await expect(row.get_by_test_id("sv-call-agent")).to_have_text("amy")
        await expect(row.get_by_test_id("sv-call-queue")).to_have_text("Support")
        support = sam.locator('[data-testid="sv-queue"][data-queue="support"]')
        await expect(support.get_by_test_id("sv-queue-waiting")).to_have_text("1", timeout=3000)
        await expect(support.get_by_test_id("sv-queue-sl")).to_have_text("100%")
        amy_row = sam.locator('[data-testid="sv-agent"][data-agent="amy"]')
        await expect(amy_row).to_have_attribute("data-state", "on-call", timeout=3000)

        caller.rtp.send_tone(engine_port, CALLER, 60.0)
        amy.send_pcm(tone(AMY, 1.0), loop_forever=True)

        # Listen: the page plays the call; nobody hears the supervisor.
        loop = asyncio.get_running_loop()
        frames_before = await sam.evaluate("window.softphoneStats.framesIn")
        clicked = loop.time()
        await row.get_by_test_id("sv-listen").click()
        while await sam.evaluate("window.softphoneStats.framesIn") == frames_before:
            assert loop.time() - clicked < 3.0, "no audio frame reached the page"
            await asyncio.sleep(0.01)
        first_frame = loop.time() - clicked
        await expect(sam.get_by_test_id("sv-monitor-active")).to_be_visible()
        await expect(sam.get_by_test_id("sv-mode-listen")).to_have_attribute("aria-pressed", "true")
        heard = await page_hears(sam, {CALLER, AMY})
        print(
            f"listen: first audio frame at the page {first_frame * 1000:.0f} ms after the "
            f"click; both tones measured {(loop.time() - clicked) * 1000:.0f} ms after: {heard}"
        )
        await hears_then(caller.rtp.audio, {AMY}, "caller while listened to")
        await hears_then(amy.audio, {CALLER}, "amy while listened to")
        sam_phone = desk.phones.phone("sam")
        page_call = sam_phone.current
        assert page_call is not None

        # Whisper: the same page call; amy hears the supervisor's microphone, the caller not.
        await sam.get_by_test_id("sv-mode-whisper").click()
        await expect(sam.get_by_test_id("sv-mode-whisper")).to_have_attribute(
            "aria-pressed", "true"
        )
        assert sam_phone.current is page_call, "switching re-dialled"
        await hears_then(amy.audio, {CALLER, MIC}, "amy while whispered to")
        await hears_then(caller.rtp.audio, {AMY}, "caller while amy is whispered to")
        print(f"whisper: the page hears {await page_hears(sam, {CALLER, AMY})}")

        # Barge: everyone hears the supervisor.
        await sam.get_by_test_id("sv-mode-barge").click()
        await expect(sam.get_by_test_id("sv-mode-barge")).to_have_attribute("aria-pressed", "true")
        assert sam_phone.current is page_call, "switching re-dialled"
        await hears_then(caller.rtp.audio, {AMY, MIC}, "caller with the supervisor barged in")
        await hears_then(amy.audio, {CALLER, MIC}, "amy with the supervisor barged in")
        await expect(
            row.locator('[data-testid="sv-party"][data-label="supervisor:sam"]')
        ).to_have_attribute("data-mode", "barge", timeout=3000)

        # The monitoring log shows each step (and the audit API agrees).
        log = sam.get_by_test_id("sv-audit-entry")
        for action in ("monitor.listen", "monitor.whisper", "monitor.barge"):
            entry = sam.locator(f'[data-testid="sv-audit-entry"][data-action="{action}"]')
            await expect(entry).to_have_count(1, timeout=3000)
        await expect(log.first).to_have_attribute("data-subject", f"call:{call_id}")

        await sam.get_by_test_id("sv-leave").click()
        await expect(sam.get_by_test_id("sv-monitor-idle")).to_be_visible()
        await until(lambda: sam_phone.current is None, what="the page's call ends")
        leave = sam.locator('[data-testid="sv-audit-entry"][data-action="monitor.leave"]')
        await expect(leave).to_have_count(1, timeout=3000)
        await hears_then(caller.rtp.audio, {AMY}, "caller after the supervisor left")
        audit = PageClient(desk.base_url)
        await audit.login("sam", PASSWORDS["sam"])
        entries = await audit.ok("GET", f"/api/audit?subject=call:{call_id}")
        assert [e["action"] for e in reversed(entries)] == [
            "monitor.listen",
            "monitor.whisper",
            "monitor.barge",
            "monitor.leave",
        ]
        await audit.close()
        await amy.stop_sending()
        caller.close()
        waiting.close()
