"""A conference built from the agent page in real browsers, every step proven by tones.

The whole center runs in-process (see test_desk_calls.py) with its trunk's outbound peer
pointing at SIPp's built-in UAS, which answers the call the engine dials and echoes its RTP
(`-rtp_echo`). Agent pages amy and ben run in Debian's Chromium, each browser with a fake
microphone of its own tone; the caller is a SIP phone whose RTP peer sends a third tone.

amy answers the caller on her page, adds ben straight in from "Add to call" (while ben's
page rings the caller hears music, not amy), ben answers on his page: caller, amy and ben
each hear the other two. amy adds an outside number through the trunk: the caller now hears
its own tone, which only the number's echo can bring back. amy mutes ben (his tone is gone
at the caller, and back after unmute), removes the number (SIPp's call ends cleanly, the
echo stops), and hangs up: ben's page shows the call is his now, with the owner's controls,
and ben and the caller still hear each other. A second test takes "Talk first": amy and ben
talk privately while the caller hears music (and neither of them), then "Join them in" makes
it a conference of three, and ben leaves it.

At every step each tone is measured at every ear (the caller's RTP peer, and what each page
received): heard means an amplitude above HEARD, absent below ABSENT (as in the tone matrix);
the levels are printed (`-s`). A tone missing from one 0.8 s window is listened for again
(twice at most): a headless browser's capture may stall for a moment on a busy machine.

`conference_scene` builds the scene up to the number in the conference, for tests that
carry on from there. The third does: sam's supervisor dashboard (a browser of its own, with
a fourth tone; see SAM) shows the conference with amy as its owner, ben and the number as
parties; sam listens (sam's page hears the caller, amy and ben, nobody hears sam), whispers
to amy (amy hears sam; the caller and ben do not, nor does the number, whose echo would
bring sam to every ear) and barges in (everyone hears sam, the number too: its echo is the
only way sam's page hears sam's own tone). The audit API has listen, whisper and barge by
sam on that call. With CALLCENTER_SUPERVISOR_SCREENSHOT=docs/supervisor.png it saves the
README's picture of the dashboard while sam is barged in.

On failure every page's screenshot is written to `test-artifacts/` and its path printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Playwright, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.media import PCM, rms_dbfs
from tests.engine.test_acd_calls import (
    REGULAR,
    SUPPORT,
    VIP,
    hung_up,
    place,
    staff_and_customers,  # noqa: F401 (autouse: amy, ben and two customers)
    until,
)
from tests.engine.test_bridge import Caller
from tests.engine.test_sipp import free_port

from .page_client import PageClient
from .test_agent_page import Pages, go_available, launch_chromium, microphone_wav
from .test_desk_calls import PASSWORDS, Desk, open_desk
from .test_supervisor_page import Dashboard
from .tones import ABSENT, HEARD, amplitude

pytest_plugins = ["tests.engine.test_bridge"]

# No tone is a harmonic of another (as in the tone matrix of test_conference_calls.py).
CALLER, AMY, BEN = 650.0, 1230.0, 1870.0
NAMES = {CALLER: "caller", AMY: "amy", BEN: "ben"}
# The supervisor's tone (not the tone matrix's 2530 Hz, which is 2·650 + 1230): with the
# number in the conference every ear hears each tone twice, straight and through its echo,
# and loud enough for the room's sum to clip at int16, which makes intermodulation products
# a·650 + b·1230 + c·1870; none lands on 2750 Hz below the ninth order. And 2750 Hz has a
# whole number of cycles in a 20 ms frame, like the caller's 650 Hz: the echo comes back
# whole frames late, so it always adds to the straight tone, never cancels it (amy's and
# ben's tones are 0.6 and 0.4 of a cycle out per frame: measured at 0.4 to 1.6 times their
# level through the number, well above HEARD).
SAM = 2750.0
NUMBER = "+441632960777"  # the outside party, dialled through the trunk to SIPp
SETTLE = 0.5  # seconds for a change to reach every jitter buffer before listening
WINDOW = 0.8  # seconds listened to per step
SIPP = shutil.which("sipp")


class Stage(Pages):
    """The center with its trunk dialling out to `outbound_port`, and agent pages each in a
    browser whose fake microphone plays a tone of its own."""

    def __init__(
        self, playwright: Playwright, browser: Browser, desk: Desk, outbound_port: int, tmp: Path
    ) -> None:
        super().__init__(browser, desk)
        self.playwright = playwright
        self.outbound_port = outbound_port
        self.tmp = tmp
        self.browsers: list[Browser] = [browser]

    async def browser_with(self, user: str, tone_hz: float) -> Browser:
        """A Chromium of its own whose fake microphone plays `tone_hz` (for `user`'s page)."""
        # Longer than the test: the fake device loops its file, and the loop is not tested.
        wav = microphone_wav(self.tmp / f"mic-{user}.wav", frequency=tone_hz, seconds=90.0)
        browser = await launch_chromium(self.playwright, wav)
        self.browsers.append(browser)
        return browser

    async def agent_with(self, user: str, tone_hz: float) -> Page:
        return await self.agent(user, browser=await self.browser_with(user, tone_hz))

    async def close(self) -> None:
        await super().close()
        for browser in self.browsers:
            with contextlib.suppress(Exception):
                await browser.close()


@pytest_asyncio.fixture
async def stage(
    database: AsyncEngine, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Stage]:
    outbound_port = free_port()
    async with (
        async_playwright() as playwright,
        open_desk(database, tmp_path, outbound_port=outbound_port) as desk,
    ):
        # The default browser (a silent microphone) for pages whose sound does not matter.
        silent = microphone_wav(tmp_path / "mic-silent.wav", frequency=0.0)
        opened = Stage(
            playwright, await launch_chromium(playwright, silent), desk, outbound_port, tmp_path
        )
        try:
            yield opened
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                for path in await opened.screenshots(request.node.name):
                    print(f"screenshot of the page at failure: {path.resolve()}")
            await opened.close()


class OutsideParty:
    """SIPp's built-in UAS on the trunk's outbound port: it answers one call and sends back
    every RTP packet it receives (so the conference hears, through it, what it heard)."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.log = workdir / "sipp-uas.log"
        self.errors = workdir / "sipp-uas-errors.log"
        self.process: asyncio.subprocess.Process | None = None
        self._out: IO[bytes] | None = None

    async def start(self) -> None:
        # `make test` installs Debian's sip-tester; without it this is a broken setup.
        assert SIPP is not None, "sipp not found: run `make test` as root to install sip-tester"
        media_port = free_port()
        self._out = self.log.open("wb")  # a file, not a pipe: SIPp's screen must never block
        self.process = await asyncio.create_subprocess_exec(
            SIPP,
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-mp",
            str(media_port),
            "-rtp_echo",
            "-m",
            "1",
            "-timeout",
            "60s",
            "-trace_err",
            "-error_file",
            str(self.errors),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._out,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.log.parent,
        )
        await asyncio.sleep(0.3)  # bound and listening
        assert self.process.returncode is None, self.output()

    def output(self) -> str:
        text = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        if self.errors.exists():
            text += "\n--- SIPp errors ---\n" + self.errors.read_text(errors="replace")
        return text

    async def finished(self, timeout: float) -> int:
        """SIPp's exit code once its one call is over (0: the call went as scripted)."""
        assert self.process is not None
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"SIPp still running:\n{self.output()}") from None

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._out is not None:
            self._out.close()


async def page_audio(page: Page, seconds: float) -> PCM:
    """The last `seconds` of what the page received (before playout)."""
    ms = round(seconds * 1000)
    samples = await page.evaluate(f"Array.from(window.softphoneDebug.lastReceived({ms}))")
    return np.asarray(samples, dtype=np.int16)


@dataclass
class Scene:
    """A caller in amy's conference with ben (both on their pages) and, once added, an
    outside number; `listen` measures every tone at every ear (and at the pages of
    `add_ear`, with their tones)."""

    stage: Stage
    caller: Caller
    engine_port: int
    call_id: str
    amy: Page
    ben: Page
    number: OutsideParty
    levels: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    tones: dict[float, str] = field(default_factory=lambda: dict(NAMES))  # measured at each ear
    others: dict[str, Page] = field(default_factory=dict)  # more pages listened at, by name

    @property
    def desk(self) -> Desk:
        return self.stage.desk

    def add_ear(self, name: str, page: Page, tone_hz: float) -> None:
        """Listen at `page` too (as `name`) and measure its microphone's tone everywhere."""
        self.others[name] = page
        self.tones[tone_hz] = name

    async def listen(
        self,
        step: str,
        heard: dict[str, set[float]],
        absent: dict[str, set[float]] | None = None,
    ) -> None:
        """After the change has settled: at each ear (the caller, each page) the tones of
        `heard` are there (> HEARD) and those of `absent` are not (< ABSENT). A tone missing
        from one window is listened for again (twice at most): a browser's capture may stall
        for a moment on a busy machine, and that is not what is tested here."""
        absent = absent or {}
        names = self.tones
        pages = {"amy": self.amy, "ben": self.ben, **self.others}
        listened = [ear for ear in pages if ear in heard or ear in absent]
        await asyncio.sleep(SETTLE)
        for _ in range(3):
            mark = len(self.caller.rtp.audio())
            await asyncio.sleep(WINDOW)
            pcm = {"caller": self.caller.rtp.audio()[mark:]}
            received = await asyncio.gather(*(page_audio(pages[ear], WINDOW) for ear in listened))
            pcm.update(zip(listened, received, strict=True))
            levels = {
                ear: {name: round(amplitude(audio, f)) for f, name in names.items()}
                for ear, audio in pcm.items()
                if ear in heard or ear in absent
            }
            self.levels[step] = levels
            print(f"{step}: {levels}")
            for ear, tones in absent.items():
                for tone in tones:
                    assert levels[ear][names[tone]] < ABSENT, (
                        f"{step}: {ear} hears {names[tone]}: {levels[ear]}"
                    )
            missing = [
                f"{ear} does not hear {names[tone]}: {levels[ear]}"
                for ear, tones in heard.items()
                for tone in tones
                if len(pcm[ear]) < 8000 * WINDOW * 0.8 or levels[ear][names[tone]] <= HEARD
            ]
            if not missing:
                return
            print(f"{step}: listening again ({'; '.join(missing)})")
        raise AssertionError(f"{step}: {'; '.join(missing)}")


def party(page: Page, label: str) -> Any:
    """The row of the party `label` ('agent:ben', 'number:+44…') in the page's list."""
    return page.locator(f'[data-testid="party"][data-label="{label}"]')


@contextlib.asynccontextmanager
async def amy_on_a_call(stage: Stage) -> AsyncIterator[Scene]:
    """amy's and ben's pages (ben available), and a caller that amy answered on hers, who
    sends their tone all the time. Its outside party is ready but not started."""
    desk = stage.desk
    acd = desk.center.acd
    amy = await stage.agent_with("amy", AMY)
    ben = await stage.agent_with("ben", BEN)
    await go_available(amy)
    await until(lambda: acd.agent_status("amy").state == "available")
    caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
    number = OutsideParty(stage.outbound_port, stage.tmp)
    try:
        await expect(amy.get_by_test_id("toast")).to_be_visible(timeout=3000)
        await amy.get_by_test_id("answer").click()
        await expect(amy.get_by_test_id("call-panel")).to_be_visible()
        await until(lambda: acd.agent_status("amy").state == "on-call")
        call_id = acd.agent_status("amy").call_id
        assert call_id is not None
        caller.rtp.send_tone(engine_port, CALLER, 120.0)
        scene = Scene(stage, caller, engine_port, call_id, amy, ben, number)
        await scene.listen("amy answered", {"caller": {AMY}, "amy": {CALLER}})
        await go_available(ben)
        await until(lambda: acd.agent_status("ben").state == "available")
        await amy.get_by_test_id("tab-add").click()
        await expect(amy.get_by_test_id("add-panel")).to_be_visible()
        yield scene
    finally:
        await number.stop()
        caller.close()


@contextlib.asynccontextmanager
async def conference_scene(stage: Stage) -> AsyncIterator[Scene]:
    """The caller answered by amy on her page; ben added straight in from amy's page
    (checked: the caller hears music while ben rings) and answering on his; then the outside
    number added (SIPp echoing). Each step is proven by tones at every ear."""
    async with amy_on_a_call(stage) as scene:
        amy, ben, caller = scene.amy, scene.ben, scene.caller

        # amy adds ben straight in; while ben's page rings, the caller hears music.
        await amy.get_by_test_id("add-agent").select_option("ben")
        await amy.get_by_test_id("add-join").click()
        await expect(amy.get_by_test_id("consult-state")).to_have_text(
            re.compile(r"^Reaching ben… The caller hears music"), timeout=3000
        )
        await expect(amy.get_by_test_id("consult-complete")).to_be_hidden()
        await expect(ben.get_by_test_id("toast")).to_be_visible(timeout=3000)
        await expect(ben.get_by_test_id("toast-kind")).to_have_text(
            "amy is bringing you into a call"
        )
        await asyncio.sleep(SETTLE)
        ringing = len(caller.rtp.audio())
        await asyncio.sleep(1.0)
        music = caller.rtp.audio()[ringing:]
        scene.levels["ben ringing"] = {
            "caller": {
                "rms_dbfs": round(rms_dbfs(music)),
                **{NAMES[f]: round(amplitude(music, f)) for f in NAMES},
            }
        }
        print(f"ben ringing: {scene.levels['ben ringing']}")
        assert rms_dbfs(music) > -40, "the caller hears no music while ben rings"
        assert amplitude(music, AMY) < ABSENT, "the caller hears amy while ben rings"
        assert amplitude(music, BEN) < ABSENT, "the caller hears ben before he answered"

        await ben.get_by_test_id("answer").click()
        await expect(party(amy, "agent:ben")).to_be_visible(timeout=5000)
        await expect(amy.get_by_test_id("consult-panel")).to_be_hidden()
        await expect(party(amy, "agent:ben").get_by_test_id("party-mute")).to_be_visible()
        # ben is a party in amy's conference: he sees her, and can only leave.
        await expect(party(ben, "agent:amy")).to_be_visible(timeout=5000)
        await expect(ben.get_by_test_id("call-role")).to_contain_text("amy's conference")
        await expect(ben.get_by_test_id("hangup")).to_have_text("Leave the call")
        for control in ("hold", "mute", "call-tools"):
            await expect(ben.get_by_test_id(control)).to_be_hidden()
        await expect(party(ben, "agent:amy").get_by_test_id("party-remove")).to_be_hidden()
        await scene.listen(
            "ben joined",
            {"caller": {AMY, BEN}, "amy": {CALLER, BEN}, "ben": {CALLER, AMY}},
        )

        # amy adds the outside number: SIPp answers and echoes what it hears, so the caller
        # hears its own voice back (the room never sends anyone their own audio).
        await scene.number.start()
        await amy.get_by_test_id("add-kind-number").check()
        await amy.get_by_test_id("add-number").fill(NUMBER)
        await amy.get_by_test_id("add-join").click()
        await expect(party(amy, f"number:{NUMBER}")).to_be_visible(timeout=5000)
        await expect(party(amy, f"number:{NUMBER}").get_by_test_id("party-kind")).to_have_text(
            "Outside number"
        )
        await expect(party(ben, f"number:{NUMBER}")).to_be_visible(timeout=3000)
        await expect(amy.get_by_test_id("parties-count")).to_have_text("2")
        await scene.listen(
            "number joined",
            {"caller": {CALLER, AMY, BEN}, "amy": {CALLER, BEN}, "ben": {CALLER, AMY}},
        )
        yield scene


@pytest.mark.asyncio
async def test_agent_page_builds_a_conference_with_an_agent_and_an_outside_number(
    stage: Stage,
) -> None:
    async with conference_scene(stage) as scene:
        amy, ben, call_id = scene.amy, scene.ben, scene.call_id
        acd = scene.desk.center.acd
        outside = party(amy, f"number:{NUMBER}")

        # amy mutes ben: his tone is gone at the caller (and at amy), he still hears them.
        ben_row = party(amy, "agent:ben")
        await ben_row.get_by_test_id("party-mute").click()
        await expect(ben_row).to_have_attribute("data-mode", "muted")
        await expect(ben_row.get_by_test_id("party-badge")).to_have_text("Muted")
        await expect(ben_row.get_by_test_id("party-mute")).to_have_attribute("aria-pressed", "true")
        await expect(party(ben, "agent:amy")).to_be_visible()
        await scene.listen(
            "ben muted",
            {"caller": {CALLER, AMY}, "amy": {CALLER}, "ben": {CALLER, AMY}},
            {"caller": {BEN}, "amy": {BEN}},
        )
        await ben_row.get_by_test_id("party-mute").click()
        await expect(ben_row).to_have_attribute("data-mode", "full")
        await expect(ben_row.get_by_test_id("party-badge")).to_be_hidden()
        await scene.listen("ben unmuted", {"caller": {AMY, BEN}, "amy": {BEN}})

        # amy removes the number: SIPp gets its BYE (its one call ends as scripted), and the
        # caller's echo is gone.
        await outside.get_by_test_id("party-remove").click()
        await expect(outside).to_be_hidden(timeout=3000)
        await expect(party(ben, f"number:{NUMBER}")).to_be_hidden(timeout=3000)
        assert await scene.number.finished(5.0) == 0, scene.number.output()
        await scene.listen(
            "number removed",
            {"caller": {AMY, BEN}, "amy": {CALLER, BEN}, "ben": {CALLER, AMY}},
            {"caller": {CALLER}},
        )

        # amy hangs up: the conference goes on, and ben's page runs it now.
        await amy.get_by_test_id("hangup").click()
        await expect(amy.get_by_test_id("wrapup-panel")).to_be_visible(timeout=3000)
        await until(lambda: acd.agent_status("amy").state == "wrap-up")
        await expect(ben.get_by_test_id("call-tools")).to_be_visible(timeout=3000)
        for control in ("hold", "mute"):
            await expect(ben.get_by_test_id(control)).to_be_visible()
        await expect(ben.get_by_test_id("hangup")).to_have_text("Hang up")
        await expect(ben.get_by_test_id("parties")).to_be_hidden()
        await expect(ben.get_by_test_id("call-state")).to_have_text("Talking")
        await expect(
            ben.get_by_test_id("notice").filter(has_text="the call is yours now")
        ).to_be_visible()
        await expect(ben.get_by_test_id("recording-state")).to_have_text("Recording")
        assert acd.agent_status("ben").call_id == call_id
        await scene.listen(
            "amy left",
            {"caller": {BEN}, "ben": {CALLER}},
            {"caller": {AMY}, "ben": {AMY}},
        )

        await ben.get_by_test_id("hangup").click()
        await hung_up(scene.caller, 3.0)
        await expect(ben.get_by_test_id("wrapup-panel")).to_be_visible(timeout=3000)
        kinds = [e["kind"] for e in (await scene.desk.center.record(call_id))["timeline"]]
        for kind in ("party-ringing", "party-joined", "party-muted", "party-left"):
            assert kind in kinds, (kind, kinds)
        assert "owner-changed" in kinds, kinds


@pytest.mark.asyncio
async def test_agent_page_talks_to_an_agent_first_then_joins_them_in(stage: Stage) -> None:
    async with amy_on_a_call(stage) as scene:
        amy, ben, caller = scene.amy, scene.ben, scene.caller
        acd = scene.desk.center.acd

        # "Talk first": ben answers, and amy and ben talk while the caller hears music.
        await amy.get_by_test_id("add-agent").select_option("ben")
        await amy.get_by_test_id("add-consult").click()
        await expect(ben.get_by_test_id("toast")).to_be_visible(timeout=3000)
        await ben.get_by_test_id("answer").click()
        await expect(amy.get_by_test_id("consult-state")).to_have_text(
            "Talking privately with ben. The caller hears music.", timeout=5000
        )
        for button in ("consult-join", "consult-complete"):
            await expect(amy.get_by_test_id(button)).to_be_visible()
        await expect(amy.get_by_test_id("consult-cancel")).to_have_text("Back to the caller")
        await expect(amy.get_by_test_id("add-join")).to_be_disabled()
        await scene.listen(
            "talking privately",
            {"amy": {BEN}, "ben": {AMY}},
            {"caller": {AMY, BEN}, "amy": {CALLER}, "ben": {CALLER}},
        )
        music = caller.rtp.audio()[-6400:]
        print(f"talking privately: the caller hears {rms_dbfs(music):.0f} dBFS")
        assert rms_dbfs(music) > -40, "the caller hears no music during the consultation"

        # "Join them in": a conference of three.
        await amy.get_by_test_id("consult-join").click()
        await expect(party(amy, "agent:ben")).to_be_visible(timeout=3000)
        await expect(amy.get_by_test_id("consult-panel")).to_be_hidden()
        await expect(amy.get_by_test_id("call-state")).to_have_text("Conference")
        await expect(party(ben, "agent:amy")).to_be_visible(timeout=3000)
        await scene.listen(
            "joined in",
            {"caller": {AMY, BEN}, "amy": {CALLER, BEN}, "ben": {CALLER, AMY}},
        )

        # ben leaves: amy's conference is a call with the caller again.
        await ben.get_by_test_id("hangup").click()
        await expect(ben.get_by_test_id("wrapup-panel")).to_be_visible(timeout=3000)
        await expect(amy.get_by_test_id("parties")).to_be_hidden(timeout=3000)
        await expect(amy.get_by_test_id("call-state")).to_have_text("Talking")
        await until(lambda: acd.agent_status("ben").state == "wrap-up")
        await scene.listen("ben left", {"caller": {AMY}, "amy": {CALLER}}, {"caller": {BEN}})
        await amy.get_by_test_id("hangup").click()
        await hung_up(caller, 3.0)


def sv_party(row: Any, label: str) -> Any:
    """The chip of the party `label` in a call's row of the supervisor dashboard."""
    return row.locator(f'[data-testid="sv-party"][data-label="{label}"]')


@pytest.mark.asyncio
async def test_supervisor_page_listens_whispers_to_amy_then_barges_into_the_conference(
    stage: Stage,
) -> None:
    async with conference_scene(stage) as scene:
        desk, amy, ben, call_id = scene.desk, scene.amy, scene.ben, scene.call_id
        dashboard = Dashboard(await stage.browser_with("sam", SAM), desk)
        sam = await dashboard.sign_in("sam")
        stage.pages["sam"] = sam  # screenshotted with the agents' pages on failure
        scene.add_ear("sam", sam, SAM)
        # A second caller waits (amy and ben are both busy): the queue's tile shows it.
        waiting, _ = await place(desk.center, SUPPORT, VIP)
        with contextlib.closing(waiting):
            # The conference on the dashboard: amy owns it, ben and the number are parties.
            row = sam.locator(f'[data-testid="sv-call"][data-call-id="{call_id}"]')
            await expect(row.get_by_test_id("sv-call-state")).to_have_text(
                "Conference", timeout=3000
            )
            await expect(row.get_by_test_id("sv-call-agent")).to_have_text("amy")
            await expect(row.get_by_test_id("sv-call-queue")).to_have_text("Support")
            await expect(row.get_by_test_id("sv-call-caller")).to_contain_text(REGULAR)
            await expect(row.get_by_test_id("sv-party")).to_have_count(3)
            for label, role, name in (
                ("agent:amy", "owner", "amy"),
                ("agent:ben", "party", "ben"),
                (f"number:{NUMBER}", "party", NUMBER),
            ):
                await expect(sv_party(row, label)).to_have_attribute("data-role", role)
                await expect(sv_party(row, label)).to_have_attribute("data-mode", "full")
                await expect(sv_party(row, label)).to_have_text(name)
            for agent in ("amy", "ben"):
                await expect(
                    sam.locator(f'[data-testid="sv-agent"][data-agent="{agent}"]')
                ).to_have_attribute("data-state", "on-call")
            support = sam.locator('[data-testid="sv-queue"][data-queue="support"]')
            await expect(support.get_by_test_id("sv-queue-waiting")).to_have_text("1", timeout=3000)
            await expect(sam.get_by_test_id("sv-call")).to_have_count(2)

            # Listen: sam's page hears the room; nobody hears sam (nor does the number,
            # whose echo would bring sam's tone to every ear, sam's own included).
            await row.get_by_test_id("sv-listen").click()
            await expect(sam.get_by_test_id("sv-mode-listen")).to_have_attribute(
                "aria-pressed", "true"
            )
            await expect(sv_party(row, "supervisor:sam")).to_have_attribute("data-mode", "listen")
            await expect(party(amy, "supervisor:sam")).to_be_hidden()
            sam_phone = desk.phones.phone("sam")
            page_call = sam_phone.current
            assert page_call is not None
            await scene.listen(
                "sam listens",
                {
                    "sam": {CALLER, AMY, BEN},
                    "caller": {CALLER, AMY, BEN},
                    "amy": {CALLER, BEN},
                    "ben": {CALLER, AMY},
                },
                {ear: {SAM} for ear in ("caller", "amy", "ben", "sam")},
            )

            # Whisper to the owner, amy (the same page call: nothing is re-dialled): amy
            # hears sam; the caller, ben and the number (no echo of sam) do not.
            await sam.get_by_test_id("sv-mode-whisper").click()
            await expect(sam.get_by_test_id("sv-mode-whisper")).to_have_attribute(
                "aria-pressed", "true"
            )
            await expect(
                sam.get_by_test_id("sv-whisper-to").locator("option:checked")
            ).to_have_text("amy (owner)")
            await expect(sv_party(row, "supervisor:sam")).to_have_attribute("data-mode", "whisper")
            assert sam_phone.current is page_call, "switching re-dialled"
            await scene.listen(
                "sam whispers to amy",
                {
                    "amy": {CALLER, BEN, SAM},
                    "sam": {CALLER, AMY, BEN},
                    "caller": {CALLER, AMY, BEN},
                    "ben": {CALLER, AMY},
                },
                {"caller": {SAM}, "ben": {SAM}, "sam": {SAM}},
            )

            # Barge: everyone hears sam, the number too (its echo is the only way sam's
            # page can hear sam's own tone).
            await sam.get_by_test_id("sv-mode-barge").click()
            await expect(sam.get_by_test_id("sv-mode-barge")).to_have_attribute(
                "aria-pressed", "true"
            )
            await expect(sv_party(row, "supervisor:sam")).to_have_attribute("data-mode", "barge")
            for their_page in (amy, ben):
                await expect(party(their_page, "supervisor:sam")).to_be_visible(timeout=3000)
            assert sam_phone.current is page_call, "switching re-dialled"
            await scene.listen(
                "sam barged in",
                {
                    "caller": {CALLER, AMY, BEN, SAM},
                    "amy": {CALLER, BEN, SAM},
                    "ben": {CALLER, AMY, SAM},
                    "sam": {CALLER, AMY, BEN, SAM},
                },
            )
            await expect(sam.get_by_test_id("sv-audit-entry")).to_have_count(3, timeout=3000)
            await dashboard.screenshot()

            # The audit trail: each step by sam, on this call, in order.
            audit = PageClient(desk.base_url)
            try:
                await audit.login("sam", PASSWORDS["sam"])
                trail = await audit.ok("GET", f"/api/audit?subject=call:{call_id}")
            finally:
                await audit.close()
            assert [(e["actor"], e["action"]) for e in reversed(trail)] == [
                ("sam", "monitor.listen"),
                ("sam", "monitor.whisper"),
                ("sam", "monitor.barge"),
            ], trail
            steps = [e["detail"] for e in reversed(trail)]
            assert [d.get("from") for d in steps] == [None, "listen", "whisper"], steps
            assert all(d["via"] == "page" and "whisper_to" not in d for d in steps), steps
