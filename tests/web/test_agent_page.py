"""The agent page in a real browser: Debian's Chromium, headless, driven by Playwright.

The page is the shipped `callcenter/web/static` page, served by the app in front of a whole
in-process center (see test_desk_calls.py); its microphone is Chromium's fake capture device
playing a 1300 Hz WAV. The caller is a SIP phone with an RTP peer. Proven by measurement:
the toast shows the matched customer within 1 s of the INVITE, 700 Hz from the caller is
found in what the page received (`window.softphoneDebug.lastReceived()`), the page's
microphone tone is found at the caller, hold gives the caller music, a blind transfer reaches
a second agent's page, the wrap-up is saved, and a reload re-attaches audio within 2 s.

On failure every page's screenshot is written to `test-artifacts/` and its path printed.
Set CALLCENTER_SOFTPHONE_SCREENSHOT=docs/softphone.png to refresh the README's picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    async_playwright,
    expect,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.media import dominant_frequency, rms_dbfs
from tests.engine.test_acd_calls import (
    REGULAR,
    SUPPORT,
    VIP,
    hung_up,
    place,
    staff_and_customers,  # noqa: F401 (autouse: amy, ben and two customers)
    until,
)

from .test_desk_calls import PASSWORDS, Desk, open_desk

pytest_plugins = ["tests.engine.test_bridge"]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path("test-artifacts")
MIC_HZ = 1300.0


def microphone_wav(path: Path, frequency: float = MIC_HZ, seconds: float = 10.0) -> Path:
    rate = 48000
    t = np.arange(int(rate * seconds)) / rate
    samples = (9000 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


async def launch_chromium(playwright: Playwright, microphone: Path) -> Browser:
    """Debian's Chromium, headless, its fake microphone playing the WAV `microphone` (one
    file per browser process: pages that must sound different need browsers of their own)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (as root)")
    return await playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    wav = microphone_wav(tmp_path / "mic.wav")
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, wav)
        try:
            yield browser
        finally:
            await browser.close()


class Pages:
    """The test's pages, for screenshots when it fails."""

    def __init__(self, browser: Browser, desk: Desk) -> None:
        self.browser = browser
        self.desk = desk
        self.pages: dict[str, Page] = {}
        self.contexts: list[BrowserContext] = []

    async def agent(self, user: str, *, browser: Browser | None = None) -> Page:
        """`user`'s desk page, logged in (in `browser`: its own microphone, if given)."""
        context = await (browser or self.browser).new_context(
            viewport={"width": 1280, "height": 800}
        )
        await context.grant_permissions(["microphone"], origin=self.desk.base_url)
        self.contexts.append(context)
        page = await context.new_page()
        self.pages[user] = page
        page.on("console", lambda m: print(f"[{user} console] {m.type}: {m.text}"))
        await page.goto(self.desk.base_url + "/")
        await page.get_by_test_id("login-username").fill(user)
        await page.get_by_test_id("login-password").fill(PASSWORDS[user])
        await page.get_by_test_id("login-submit").click()
        await page.wait_for_url("**/agent")
        await expect(page.get_by_test_id("state-select")).to_be_enabled(timeout=5000)
        return page

    async def screenshots(self, name: str) -> list[Path]:
        ARTIFACTS.mkdir(exist_ok=True)
        shots = []
        for user, page in self.pages.items():
            path = ARTIFACTS / f"{name}-{user}.png"
            with contextlib.suppress(Exception):
                await page.screenshot(path=str(path), full_page=True)
                shots.append(path)
        return shots

    async def close(self) -> None:
        for context in self.contexts:
            with contextlib.suppress(Exception):
                await context.close()


@pytest_asyncio.fixture
async def pages(
    database: AsyncEngine, tmp_path: Path, browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[Pages]:
    async with open_desk(database, tmp_path) as desk:
        opened = Pages(browser, desk)
        try:
            yield opened
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                for path in await opened.screenshots(request.node.name):
                    print(f"screenshot of the page at failure: {path.resolve()}")
            await opened.close()


async def received(page: Page) -> np.ndarray[Any, Any]:
    samples = await page.evaluate("Array.from(window.softphoneDebug.lastReceived())")
    return np.asarray(samples, dtype=np.int16)


async def go_available(page: Page) -> None:
    await page.get_by_test_id("state-select").select_option("available")
    await expect(page.get_by_test_id("state-select")).to_have_value("available", timeout=3000)


async def hears(page: Page, frequency: float, timeout: float = 3.0) -> None:
    """The page's received audio (its last second) is a tone of `frequency`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    found = 0.0
    while loop.time() < deadline:
        audio = await received(page)
        if len(audio) >= 4000:
            found = float(dominant_frequency(audio[-4000:]))
            if abs(found - frequency) < 20:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the page does not hear {frequency} Hz (found {found:.0f} Hz)")


@pytest.mark.asyncio
async def test_agent_page_takes_a_call_end_to_end(pages: Pages) -> None:
    desk = pages.desk
    amy = await pages.agent("amy")
    await go_available(amy)
    await until(lambda: desk.center.acd.agent_status("amy").state == "available")

    loop = asyncio.get_running_loop()
    invited = loop.time()
    caller, engine_port = await place(desk.center, SUPPORT, VIP)
    toast = amy.get_by_test_id("toast")
    await expect(toast).to_be_visible(timeout=1000)
    await expect(amy.get_by_test_id("toast-customer-name")).to_have_text(
        "Vera Important", timeout=1000
    )
    shown = loop.time() - invited
    print(f"toast with the customer {shown * 1000:.0f} ms after the INVITE was sent")
    assert shown < 1.0

    await amy.get_by_test_id("answer").click()
    await expect(amy.get_by_test_id("call-panel")).to_be_visible()
    await until(lambda: desk.center.acd.agent_status("amy").state == "on-call")

    # Tones both ways: the caller's 700 Hz at the page, the page's microphone at the caller.
    caller.rtp.send_tone(engine_port, 700.0, 3.0)
    await hears(amy, 700.0)
    await asyncio.sleep(0.5)
    assert abs(dominant_frequency(caller.rtp.audio()[-4000:]) - MIC_HZ) < 20

    # Hold: the caller hears music instead of the microphone.
    await amy.get_by_test_id("hold").click()
    await expect(amy.get_by_test_id("hold")).to_have_attribute("aria-pressed", "true")
    await asyncio.sleep(0.4)
    heard = len(caller.rtp.audio())
    await asyncio.sleep(0.8)
    music = caller.rtp.audio()[heard:]
    assert rms_dbfs(music) > -40, "no music on hold"
    assert abs(dominant_frequency(music) - MIC_HZ) > 50, "the held caller hears the agent"
    await amy.get_by_test_id("hold").click()
    await expect(amy.get_by_test_id("hold")).to_have_attribute("aria-pressed", "false")

    # The recording: paused (silence recorded) and resumed from the page, as the server says.
    toggle = amy.get_by_test_id("recording-toggle")
    await expect(amy.get_by_test_id("recording-state")).to_have_text("Recording")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(amy.get_by_test_id("recording-state")).to_contain_text("paused")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "false")

    # Reload mid-call: audio comes back to the same call within 2 s.
    call_id = desk.center.acd.agent_status("amy").call_id
    began = loop.time()
    await amy.reload()
    caller.rtp.send_tone(engine_port, 700.0, 4.0)
    await hears(amy, 700.0, timeout=2.0)
    print(f"audio re-attached {(loop.time() - began) * 1000:.0f} ms after the reload")
    assert loop.time() - began < 2.0
    assert desk.center.acd.agent_status("amy").call_id == call_id
    screenshot = os.environ.get("CALLCENTER_SOFTPHONE_SCREENSHOT")
    if screenshot:
        await expect(amy.get_by_test_id("call-panel")).to_be_visible()
        await asyncio.sleep(1.5)  # the audio figures refresh once a second
        await amy.screenshot(path=screenshot)

    await amy.get_by_test_id("hangup").click()
    await hung_up(caller, 3.0)
    await expect(amy.get_by_test_id("wrapup-panel")).to_be_visible()
    await amy.get_by_test_id("wrapup-disposition").select_option("resolved")
    await amy.get_by_test_id("wrapup-notes").fill("asked about the invoice")
    await amy.get_by_test_id("wrapup-save").click()
    assert call_id is not None
    await until(lambda: desk.center.acd.agent_status("amy").state == "available")
    await desk.center.call_log.flush()
    view = await desk.center.call_log.get(call_id)
    assert view is not None
    assert (view.outcome, view.notes) == ("resolved", "asked about the invoice")
    caller.close()


@pytest.mark.asyncio
async def test_blind_transfer_from_one_agent_page_to_another(pages: Pages) -> None:
    desk = pages.desk
    amy = await pages.agent("amy")
    ben = await pages.agent("ben")
    await go_available(amy)
    caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
    await expect(amy.get_by_test_id("toast")).to_be_visible(timeout=3000)
    await amy.get_by_test_id("answer").click()
    await until(lambda: desk.center.acd.agent_status("amy").state == "on-call")
    call_id = desk.center.acd.agent_status("amy").call_id

    await go_available(ben)
    await amy.get_by_test_id("tab-transfer").click()
    await amy.get_by_test_id("transfer-target").select_option("agent:ben")
    await amy.get_by_test_id("transfer-blind").click()
    await expect(ben.get_by_test_id("toast")).to_be_visible(timeout=5000)
    await ben.get_by_test_id("answer").click()
    await until(lambda: desk.center.acd.agent_status("ben").state == "on-call")
    assert desk.center.acd.agent_status("ben").call_id == call_id
    assert desk.center.acd.agent_status("amy").state == "wrap-up"
    caller.rtp.send_tone(engine_port, 700.0, 3.0)
    await hears(ben, 700.0)
    await asyncio.sleep(0.5)
    assert abs(dominant_frequency(caller.rtp.audio()[-4000:]) - MIC_HZ) < 20
    await ben.get_by_test_id("hangup").click()
    await hung_up(caller, 3.0)
    caller.close()
