"""Mix-minus: who hears whom in every mode, the recorder's two channels, saturation, and
agreement with a brute-force O(N^2) reference for any membership."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from callcenter.media.frame import SAMPLES_PER_FRAME
from callcenter.media.mixer import MixerError, Mode, Participant, RoomMixer, mix
from callcenter.media.tones import ToneGenerator, detect_tone

Frame = NDArray[np.int16]

# Caller, agent A, agent B, supervisor, and the music on hold: distinct tones 2+ bins apart.
TONES = {"caller": 500.0, "a": 700.0, "b": 1100.0, "sup": 1700.0}
MUSIC = 2300.0
ALL_FREQS = (*TONES.values(), MUSIC)


def frames_for(tick: int) -> tuple[dict[str, Frame], Frame]:
    gens = {pid: ToneGenerator([f], -15.0) for pid, f in TONES.items()}
    music = ToneGenerator([MUSIC], -15.0)
    for _ in range(tick):
        for g in (*gens.values(), music):
            g.next_frame()
    return {pid: g.next_frame() for pid, g in gens.items()}, music.next_frame()


def heard(frame: Frame) -> set[float]:
    return {f for f in ALL_FREQS if detect_tone(frame, f)}


def tones_of(*pids: str) -> set[float]:
    return {TONES[p] for p in pids}


# --- The rules, stated independently of the implementation ---------------------------------


def hears(listener: Participant[str], speaker: Participant[str]) -> bool:
    """DESIGN.md's modes: may `listener` hear `speaker`'s voice?"""
    if listener.mode is Mode.HOLD or listener.id == speaker.id:
        return False
    if speaker.mode is Mode.FULL:
        return True
    if speaker.mode is Mode.WHISPER and not listener.is_caller:
        if speaker.whisper_to is None:
            return listener.mode is Mode.FULL
        return speaker.whisper_to == listener.id
    return False


def on_left(speaker: Participant[str]) -> bool:
    return speaker.mode is Mode.FULL and speaker.is_caller


def on_right(speaker: Participant[str]) -> bool:
    return (speaker.mode is Mode.FULL and not speaker.is_caller) or speaker.mode is Mode.WHISPER


def room(**modes: Mode | tuple[Mode, str | None]) -> list[Participant[str]]:
    members = []
    for pid in TONES:
        spec = modes.get(pid, Mode.FULL)
        mode, target = spec if isinstance(spec, tuple) else (spec, None)
        members.append(Participant(pid, mode, is_caller=pid == "caller", whisper_to=target))
    return members


def scenarios() -> list[tuple[str, list[Participant[str]]]]:
    cases = []
    for pid in TONES:
        for mode in Mode:
            if mode is Mode.WHISPER:
                if pid == "caller":
                    continue  # refused; see test_the_caller_cannot_whisper
                targets: list[str | None] = [None, *(t for t in TONES if t != pid)]
                for target in targets:
                    cases.append((f"{pid}-whisper-to-{target}", room(**{pid: (mode, target)})))
            else:
                cases.append((f"{pid}-{mode.value}", room(**{pid: mode})))
    # Two at once: a supervisor whispering while the other agent listens, and a held caller.
    cases.append(("sup-whisper-a,b-listen", room(sup=(Mode.WHISPER, "a"), b=Mode.LISTEN)))
    cases.append(("caller-hold,sup-whisper", room(caller=Mode.HOLD, sup=(Mode.WHISPER, None))))
    cases.append(("a-muted,sup-whisper-a", room(a=Mode.MUTED, sup=(Mode.WHISPER, "a"))))
    return cases


@pytest.mark.parametrize(("name", "members"), scenarios(), ids=[n for n, _ in scenarios()])
def test_tone_matrix(name: str, members: list[Participant[str]]) -> None:
    inputs, music = frames_for(3)
    result = mix(members, inputs, music)
    for listener in members:
        expected = {TONES[s.id] for s in members if hears(listener, s)}
        if listener.mode is Mode.HOLD:
            expected = {MUSIC}
        assert heard(result.outputs[listener.id]) == expected, (name, listener.id)
    assert result.recording is not None
    assert result.recording.shape == (SAMPLES_PER_FRAME, 2)
    assert heard(result.recording[:, 0]) == {TONES[s.id] for s in members if on_left(s)}
    assert heard(result.recording[:, 1]) == {TONES[s.id] for s in members if on_right(s)}


def test_supervisor_whispering_to_agent_a_spelled_out() -> None:
    inputs, music = frames_for(0)
    result = mix(room(sup=(Mode.WHISPER, "a")), inputs, music)
    out, rec = result.outputs, result.recording
    assert rec is not None
    assert heard(out["caller"]) == tones_of("a", "b")  # never the whisper
    assert heard(out["a"]) == tones_of("caller", "b", "sup")
    assert heard(out["b"]) == tones_of("caller", "a")
    assert heard(out["sup"]) == tones_of("caller", "a", "b")
    assert heard(rec[:, 0]) == tones_of("caller")  # never the whisper
    assert heard(rec[:, 1]) == tones_of("a", "b", "sup")


def test_whisper_never_reaches_the_caller_even_when_aimed_at_it() -> None:
    inputs, music = frames_for(0)
    result = mix(room(sup=(Mode.WHISPER, "caller")), inputs, music)
    assert heard(result.outputs["caller"]) == tones_of("a", "b")
    assert heard(result.outputs["a"]) == tones_of("caller", "b")
    assert result.recording is not None
    assert heard(result.recording[:, 0]) == tones_of("caller")
    assert heard(result.recording[:, 1]) == tones_of("a", "b", "sup")


def test_whisper_to_someone_not_in_the_room_is_heard_by_no_one() -> None:
    inputs, _ = frames_for(0)
    members = [p for p in room(sup=(Mode.WHISPER, "gone")) if p.id != "b"]
    result = mix(members, inputs)
    assert heard(result.outputs["caller"]) == tones_of("a")
    assert heard(result.outputs["a"]) == tones_of("caller")
    assert result.recording is not None
    assert heard(result.recording[:, 1]) == tones_of("a", "sup")  # but QA still hears it


def test_whisper_to_a_held_agent_is_not_mixed_into_the_music() -> None:
    inputs, music = frames_for(0)
    result = mix(room(a=Mode.HOLD, sup=(Mode.WHISPER, "a")), inputs, music)
    assert heard(result.outputs["a"]) == {MUSIC}
    assert result.outputs["a"] is music


def test_the_caller_cannot_whisper() -> None:
    with pytest.raises(MixerError):
        Participant("caller", Mode.WHISPER, is_caller=True)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": Mode.FULL, "whisper_to": "a"},
        {"mode": Mode.WHISPER, "whisper_to": "x"},
    ],
)
def test_impossible_participants_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(MixerError):
        Participant("x", **kwargs)  # type: ignore[arg-type]


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(MixerError):
        RoomMixer([Participant("a"), Participant("a", Mode.LISTEN)])


# --- Arithmetic ---------------------------------------------------------------------------


def const(value: int) -> Frame:
    return np.full(SAMPLES_PER_FRAME, value, dtype=np.int16)


def test_full_scale_inputs_saturate_instead_of_wrapping() -> None:
    members = [Participant("x"), Participant("y"), Participant("z"), Participant("l", Mode.LISTEN)]
    for value, limit in ((32767, 32767), (-32768, -32768)):
        result = mix(members, {"x": const(value), "y": const(value), "z": const(value)})
        assert (result.outputs["x"] == limit).all()  # y + z
        assert (result.outputs["l"] == limit).all()  # x + y + z
        assert result.recording is not None
        assert (result.recording[:, 1] == limit).all()
        assert (result.recording[:, 0] == 0).all()


def test_opposite_full_scale_inputs_cancel_exactly() -> None:
    members = [Participant("x"), Participant("y"), Participant("l", Mode.LISTEN)]
    result = mix(members, {"x": const(32767), "y": const(-32767)})
    assert (result.outputs["l"] == 0).all()
    assert (result.outputs["x"] == -32767).all()


def test_none_and_missing_inputs_are_silence() -> None:
    members = [Participant("x", is_caller=True), Participant("y"), Participant("z")]
    result = mix(members, {"x": None, "y": const(100)})
    assert (result.outputs["x"] == 100).all()
    assert (result.outputs["y"] == 0).all()
    assert (result.outputs["z"] == 100).all()
    assert result.recording is not None
    assert (result.recording == [[0, 100]]).all()


def test_inputs_of_muted_listen_and_hold_are_ignored() -> None:
    members = [
        Participant("x"),
        Participant("m", Mode.MUTED),
        Participant("l", Mode.LISTEN),
        Participant("h", Mode.HOLD),
    ]
    inputs = {"x": const(7), "m": const(1000), "l": const(2000), "h": const(3000)}
    result = mix(members, inputs, None)
    assert (result.outputs["x"] == 0).all()
    assert (result.outputs["m"] == 7).all()
    assert (result.outputs["l"] == 7).all()
    assert (result.outputs["h"] == 0).all()  # no music: silence, not the room
    assert result.recording is not None
    assert (result.recording == [[0, 7]]).all()


def test_room_mixer_is_reused_across_ticks_without_leaking_state() -> None:
    mixer = RoomMixer([Participant(1), Participant(2), Participant(3, Mode.LISTEN)], record=False)
    first = mixer.mix({1: const(5), 2: const(9)})
    second = mixer.mix({1: None})
    assert first.recording is None
    assert (first.outputs[3] == 14).all() and (first.outputs[1] == 9).all()
    assert (second.outputs[3] == 0).all() and (second.outputs[2] == 0).all()
    assert (first.outputs[3] == 14).all()  # the first tick's frames were not overwritten


def test_empty_room_and_lone_participant() -> None:
    assert mix([], {}).outputs == {}
    alone = mix([Participant("x", is_caller=True)], {"x": const(3)})
    assert (alone.outputs["x"] == 0).all()
    assert alone.recording is not None
    assert (alone.recording == [[3, 0]]).all()


def test_wrong_frame_length_is_an_error() -> None:
    with pytest.raises(ValueError):
        mix([Participant("x")], {"x": np.zeros(80, dtype=np.int16)})


# --- Any membership against the brute-force reference -------------------------------------


def reference_mix(
    members: list[Participant[str]], inputs: dict[str, Frame | None], music: Frame | None
) -> tuple[dict[str, Frame], Frame]:
    """O(N^2): for every listener, add up every speaker it may hear."""

    def voice(p: Participant[str]) -> NDArray[np.int64]:
        frame = inputs.get(p.id)
        return np.zeros(SAMPLES_PER_FRAME, np.int64) if frame is None else frame.astype(np.int64)

    def sat(x: NDArray[np.int64]) -> Frame:
        return np.clip(x, -32768, 32767).astype(np.int16)

    present = {p.id for p in members}
    outputs = {}
    for listener in members:
        if listener.mode is Mode.HOLD:
            outputs[listener.id] = const(0) if music is None else music
            continue
        total = np.zeros(SAMPLES_PER_FRAME, np.int64)
        for speaker in members:
            target_ok = speaker.whisper_to is None or speaker.whisper_to in present
            if hears(listener, speaker) and target_ok:
                total += voice(speaker)
        outputs[listener.id] = sat(total)
    left = sum((voice(p) for p in members if on_left(p)), np.zeros(SAMPLES_PER_FRAME, np.int64))
    right = sum((voice(p) for p in members if on_right(p)), np.zeros(SAMPLES_PER_FRAME, np.int64))
    return outputs, np.stack((sat(left), sat(right)), axis=1)


Case = tuple[list[Participant[str]], dict[str, Frame | None], Frame | None, bool]


@st.composite
def memberships(draw: st.DrawFn) -> Case:
    n = draw(st.integers(0, 8))
    ids = [f"p{i}" for i in range(n)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    members = []
    inputs: dict[str, Frame | None] = {}
    for pid in ids:
        mode = draw(st.sampled_from(Mode))
        is_caller = mode is not Mode.WHISPER and draw(st.booleans())
        target = None
        if mode is Mode.WHISPER:
            target = draw(st.none() | st.sampled_from([*(i for i in ids if i != pid), "ghost"]))
        members.append(Participant(pid, mode, is_caller=is_caller, whisper_to=target))
        kind = draw(st.sampled_from(["loud", "quiet", "none", "missing"]))
        if kind == "loud":  # often saturates once two or three are summed
            inputs[pid] = rng.integers(-32768, 32768, SAMPLES_PER_FRAME).astype(np.int16)
        elif kind == "quiet":
            inputs[pid] = rng.integers(-300, 300, SAMPLES_PER_FRAME).astype(np.int16)
        elif kind == "none":
            inputs[pid] = None
    music = draw(st.none() | st.just(rng.integers(-9999, 9999, 160).astype(np.int16)))
    return members, inputs, music, draw(st.booleans())


@settings(max_examples=400, deadline=None)
@given(memberships())
def test_matches_brute_force_reference(case: Case) -> None:
    members, inputs, music, record = case
    mixer = RoomMixer(members, record=record)
    expected, recording = reference_mix(members, inputs, music)
    for _ in range(2):  # the second tick proves the reused buffers carry nothing over
        result = mixer.mix(inputs, music)
        assert result.outputs.keys() == expected.keys()
        for pid, frame in expected.items():
            assert result.outputs[pid].dtype == np.int16
            assert result.outputs[pid].shape == (SAMPLES_PER_FRAME,)
            assert np.array_equal(result.outputs[pid], frame), pid
        if record:
            assert result.recording is not None
            assert result.recording.dtype == np.int16
            assert result.recording.flags.c_contiguous
            assert np.array_equal(result.recording, recording)
        else:
            assert result.recording is None


@pytest.mark.parametrize("record", [True, False])
@pytest.mark.parametrize("callers", [(True, False), (False, True), (False, False), (True, True)])
def test_two_party_room(record: bool, callers: tuple[bool, bool]) -> None:
    members = [Participant("x", is_caller=callers[0]), Participant("y", is_caller=callers[1])]
    x, y = const(11), const(-22)
    result = RoomMixer(members, record=record).mix({"x": x, "y": y})
    assert (result.outputs["x"] == -22).all() and (result.outputs["y"] == 11).all()
    # Copies, not the inputs themselves: a leg may decode its next packet into its buffer.
    assert not np.shares_memory(result.outputs["x"], y)
    assert not np.shares_memory(result.outputs["y"], x)
    if not record:
        assert result.recording is None
        return
    assert result.recording is not None
    assert result.recording.flags.c_contiguous
    left, right = result.recording.T
    _, expected = reference_mix(members, {"x": x, "y": y}, None)
    assert np.array_equal(result.recording, expected)
    if callers == (False, True):
        assert (left == -22).all() and (right == 11).all()
    silent = RoomMixer(members, record=record).mix({})
    assert not silent.outputs["x"].any() and not silent.outputs["y"].any()


def test_reference_agrees_on_every_mode_pair() -> None:
    # Exhaustive over two participants' modes and roles, as a complement to Hypothesis.
    inputs = {"x": const(1000), "y": const(30)}
    for mx, my, cx, cy in itertools.product(Mode, Mode, (False, True), (False, True)):
        if (mx is Mode.WHISPER and cx) or (my is Mode.WHISPER and cy):
            continue
        members = [Participant("x", mx, is_caller=cx), Participant("y", my, is_caller=cy)]
        result = mix(members, inputs, const(-5))
        expected, recording = reference_mix(members, dict(inputs), const(-5))
        for pid in ("x", "y"):
            assert np.array_equal(result.outputs[pid], expected[pid]), (mx, my, cx, cy, pid)
        assert result.recording is not None
        assert np.array_equal(result.recording, recording)
