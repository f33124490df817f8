"""Sequence arithmetic across the 65535 -> 0 wrap, and RFC 3550 A.1 source validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.rtp import (
    MAX_DROPOUT,
    SourceState,
    extend_seq,
    seq_delta,
    seq_gt,
    seq_lt,
    ts_delta,
)

seqs = st.integers(0, 0xFFFF)
steps = st.integers(1, 0x7FFF)


def test_delta_vectors() -> None:
    assert seq_delta(0, 65535) == 1
    assert seq_delta(65535, 0) == -1
    assert seq_delta(5, 5) == 0
    assert seq_delta(0x8000, 0) == -0x8000  # the undefined half-way case reads as older
    assert seq_lt(65535, 0) and seq_gt(0, 65535)
    assert ts_delta(0, 0xFFFFFFFF) == 1
    assert ts_delta(0xFFFFFF60, 0x000000A0) == -320
    assert extend_seq(65535, 65536 + 1) == 65535
    assert extend_seq(2, 65535) == 65538


@given(seqs, steps)
def test_serial_order_across_wrap(a: int, step: int) -> None:
    b = (a + step) & 0xFFFF
    assert seq_lt(a, b)
    assert seq_gt(b, a)
    assert not seq_lt(b, a)
    assert seq_delta(b, a) == step
    assert seq_delta(a, b) == -step


@given(seqs, seqs)
def test_delta_is_antisymmetric_except_half_way(a: int, b: int) -> None:
    d = seq_delta(a, b)
    assert -0x8000 <= d <= 0x7FFF
    assert (b + d) & 0xFFFF == a
    if d != -0x8000:
        assert seq_delta(b, a) == -d


@given(st.integers(0, 1 << 40), st.integers(-0x7FFF, 0x7FFF))
def test_extend_recovers_the_extended_number(reference: int, offset: int) -> None:
    target = reference + offset
    assert extend_seq(target & 0xFFFF, reference) == target


@given(st.integers(0, 0xFFFFFFFF), st.integers(-(1 << 31), (1 << 31) - 1))
def test_timestamp_delta(a: int, d: int) -> None:
    assert ts_delta((a + d) & 0xFFFFFFFF, a) == d


def feed(state: SourceState, numbers: list[int]) -> list[bool]:
    return [state.update_seq(n & 0xFFFF) for n in numbers]


def test_probation_then_valid() -> None:
    state = SourceState(100)
    assert feed(state, [100, 101]) == [False, True]
    assert state.valid
    assert state.base_seq == 101
    assert state.received == 1


def test_engine_probation_of_four() -> None:
    state = SourceState(65534, min_sequential=4)
    # 65534, 65535, 0 are in sequence across the wrap; the fourth validates.
    assert feed(state, [65534, 65535, 0, 1]) == [False, False, False, True]
    assert state.base_seq == 1
    assert state.extended_max == 1


def test_probation_restarts_on_a_gap() -> None:
    state = SourceState(10, min_sequential=4)
    assert feed(state, [10, 11, 13, 14, 15, 16]) == [False] * 5 + [True]
    assert state.base_seq == 16


def test_cycles_counted_on_wrap() -> None:
    state = SourceState(65530)
    results = feed(state, list(range(65530, 65536 + 10)))
    assert results[0] is False and all(results[1:])
    assert state.cycles == 65536
    assert state.extended_max == 65536 + 9
    assert state.max_seq == 9


def test_reordered_and_duplicate_packets_are_valid() -> None:
    state = SourceState(1)
    feed(state, [1, 2, 3, 5])
    assert state.update_seq(4)  # reordered
    assert state.update_seq(5)  # duplicate
    assert state.max_seq == 5
    assert state.received == 5  # 2, 3, 5, 4, 5


def test_large_jump_needs_a_second_packet_then_resyncs() -> None:
    state = SourceState(1)
    feed(state, [1, 2, 3])
    jump = 3 + MAX_DROPOUT + 10
    assert state.update_seq(jump) is False
    assert state.max_seq == 3  # the stray packet changed nothing
    assert state.update_seq(4) is True  # the old stream goes on
    assert state.update_seq(jump) is False
    assert state.update_seq(jump + 1) is True  # two in sequence: the peer restarted
    assert state.base_seq == jump + 1
    assert state.received == 1
    assert state.restarts == 1


def test_far_misordered_packet_is_invalid() -> None:
    state = SourceState(5000)
    feed(state, [5000, 5001, 5002])
    assert state.update_seq(5002 - 150) is False  # older than MAX_MISORDER: a "jump"
    assert state.update_seq(5002 - 50) is True  # within MAX_MISORDER: reordered


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        SourceState(70000)
    with pytest.raises(ValueError):
        SourceState(1, min_sequential=0)
    with pytest.raises(ValueError):
        SourceState(1, max_dropout=65500, max_misorder=100)


@given(seqs, st.integers(1, 8), st.integers(10, 3000))
def test_in_order_stream_extends_across_the_wrap(
    start: int, min_sequential: int, count: int
) -> None:
    state = SourceState(start, min_sequential=min_sequential)
    results = feed(state, [start + i for i in range(count)])
    assert results == [False] * (min_sequential - 1) + [True] * (count - min_sequential + 1)
    first_valid = start + min_sequential - 1
    assert state.base_seq == first_valid & 0xFFFF
    last = start + count - 1
    assert state.extended_max - state.base_seq == last - first_valid
    assert state.received == count - min_sequential + 1


def test_three_wraps() -> None:
    state = SourceState(60000)
    feed(state, list(range(60000, 60000 + 3 * 65536)))
    assert state.cycles == 3 * 65536
    assert state.extended_max - state.base_seq == 3 * 65536 - 2
