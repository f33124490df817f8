"""Reception statistics (RFC 3550 A.3, A.8) against a brute-force reference."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.rtp import ReceptionStats, ntp_timestamp

CLOCK = 8000
SPF = 160


def test_perfect_stream() -> None:
    stats = ReceptionStats(1000)
    for i in range(100):
        assert stats.update(1000 + i, 160 * i, i * 0.02, 160) is (i >= 1)
    assert stats.packets == 99
    assert stats.octets == 99 * 160
    assert stats.invalid == 1
    assert stats.cumulative_lost == 0
    assert stats.jitter == 0
    interval = stats.close_interval()
    assert interval.fraction_lost == 0
    assert interval.extended_highest_sequence == 1099


def test_fraction_lost_per_interval() -> None:
    stats = ReceptionStats(0)
    stats.update(0, 0, 0.0)
    stats.update(1, 160, 0.02)
    for seq in range(2, 102):  # 100 expected, every fourth lost
        if seq % 4:
            stats.update(seq, 160 * seq, 0.02 * seq)
    first = stats.close_interval()
    assert first.expected == 101
    assert first.cumulative_lost == 25
    assert first.fraction_lost == (25 << 8) // 101
    for seq in range(102, 202):  # nothing lost
        stats.update(seq, 160 * seq, 0.02 * seq)
    second = stats.close_interval()
    assert second.lost_interval == 0
    assert second.fraction_lost == 0
    assert second.cumulative_lost == 25


def test_duplicates_make_loss_negative() -> None:
    stats = ReceptionStats(7)
    for seq in (7, 8, 9, 9, 9, 10):
        stats.update(seq, 0, 0.0)
    assert stats.duplicates == 2
    assert stats.cumulative_lost == -2
    assert stats.close_interval().fraction_lost == 0


def test_jitter_of_a_constant_offset_pattern() -> None:
    # Every other packet 10 ms late: |D| alternates 80 timestamp units.
    stats = ReceptionStats(0)
    for i in range(2000):
        stats.update(i, 160 * i, 0.02 * i + (0.01 if i % 2 else 0.0))
    assert stats.jitter == pytest.approx(80, abs=1)
    assert stats.jitter_seconds == pytest.approx(0.01, abs=0.0002)


def test_jitter_ignores_the_timestamp_wrap() -> None:
    stats = ReceptionStats(0)
    base = 0xFFFFFFFF - 160 * 10
    for i in range(40):
        stats.update(i, (base + 160 * i) & 0xFFFFFFFF, 0.02 * i)
    assert stats.jitter == 0


def test_report_block_with_lsr_and_dlsr() -> None:
    stats = ReceptionStats(10)
    for i in range(11):
        stats.update(10 + i, 160 * i, 0.02 * i, 160)
    ntp = ntp_timestamp(5000.25)
    stats.sender_report_received(ntp, arrival=3.0)
    block = stats.report_block(0xCAFE, now=3.5)
    assert block.ssrc == 0xCAFE
    assert block.highest_sequence == 20
    assert block.last_sr == (ntp >> 16) & 0xFFFFFFFF
    assert block.delay_since_last_sr == 32768  # 0.5 s in 1/65536 s
    assert stats.report_block(0xCAFE, now=3.5).delay_since_last_sr == 32768


def test_restart_clears_duplicate_memory() -> None:
    stats = ReceptionStats(100)
    for seq in range(100, 110):
        stats.update(seq, 0, 0.0)
    stats.update(40000, 0, 0.0)
    stats.update(40001, 0, 0.0)
    assert stats.restarts == 1
    assert stats.base_seq == 40001
    assert stats.update(40002, 0, 0.0)
    assert stats.duplicates == 0


def reference(
    deliveries: list[tuple[int, float]], warmup: int, report_points: set[int]
) -> tuple[dict[str, int], float, list[int]]:
    """Brute force from unwrapped sequence numbers: what A.3 and A.8 should say."""
    seen: set[int] = set()
    highest = warmup - 1
    counts = {"packets": 1, "duplicates": 0, "out_of_order": 0}
    jitter = 0.0
    previous = (warmup - 1, deliveries[warmup - 1][1])
    fractions = []
    prior_expected, prior_received = 0, 0
    seen.add(warmup - 1)
    for index, (n, arrival) in enumerate(deliveries[warmup:], start=warmup):
        counts["packets"] += 1
        if n in seen:
            counts["duplicates"] += 1
        else:
            seen.add(n)
            if n < highest:
                counts["out_of_order"] += 1
            d = abs((arrival - previous[1]) * CLOCK - (n - previous[0]) * SPF)
            jitter += (d - jitter) / 16
            previous = (n, arrival)
        highest = max(highest, n)
        if index in report_points:
            expected = highest - (warmup - 1) + 1
            expected_interval = expected - prior_expected
            lost_interval = expected_interval - (counts["packets"] - prior_received)
            prior_expected, prior_received = expected, counts["packets"]
            fractions.append(
                0
                if expected_interval == 0 or lost_interval <= 0
                else (lost_interval << 8) // expected_interval
            )
    counts["expected"] = highest - (warmup - 1) + 1
    counts["lost"] = counts["expected"] - counts["packets"]
    return counts, jitter, fractions


@settings(max_examples=150, deadline=None)
@given(
    start_seq=st.integers(65000, 65535) | st.integers(0, 65535),
    start_ts=st.integers(0xFFFF0000, 0xFFFFFFFF) | st.integers(0, 0xFFFFFFFF),
    warmup=st.integers(1, 4),
    count=st.integers(5, 400),
    loss=st.floats(0, 0.4),
    duplicate=st.floats(0, 0.2),
    reorder=st.integers(0, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_brute_force_reference(
    start_seq: int,
    start_ts: int,
    warmup: int,
    count: int,
    loss: float,
    duplicate: float,
    reorder: int,
    seed: int,
) -> None:
    rng = random.Random(seed)
    # The probation packets arrive in order; after them, loss, copies and reordering (a
    # random delay of up to `reorder` packet times, well inside MAX_MISORDER).
    sent = list(range(warmup, warmup + count))
    arrivals = [(n, n * 0.02) for n in range(warmup)]
    later = []
    for n in sent:
        if rng.random() < loss:
            continue
        later.append((n, n * 0.02 + warmup * 0.02 + rng.random() * 0.02 * reorder))
        if rng.random() < duplicate:
            later.append((n, n * 0.02 + warmup * 0.02 + rng.random() * 0.02 * reorder))
    later.sort(key=lambda d: d[1])
    deliveries = arrivals + later
    report_points = {i for i in range(warmup, len(deliveries)) if rng.random() < 0.05}
    counts, jitter, fractions = reference(deliveries, warmup, report_points)

    stats = ReceptionStats(start_seq, CLOCK, min_sequential=warmup)
    got_fractions = []
    for index, (n, arrival) in enumerate(deliveries):
        valid = stats.update((start_seq + n) & 0xFFFF, (start_ts + SPF * n) & 0xFFFFFFFF, arrival)
        assert valid is (index >= warmup - 1)
        if index in report_points:
            got_fractions.append(stats.close_interval().fraction_lost)
    assert got_fractions == fractions
    assert stats.packets == counts["packets"]
    assert stats.received == counts["packets"]
    assert stats.duplicates == counts["duplicates"]
    assert stats.out_of_order == counts["out_of_order"]
    assert stats.expected == counts["expected"]
    assert stats.cumulative_lost == counts["lost"]
    assert stats.jitter_seconds * CLOCK == pytest.approx(jitter, rel=1e-9, abs=1e-6)
    # A.3's extended highest sequence number counts from the validating packet's number.
    first_valid = (start_seq + warmup - 1) & 0xFFFF
    extended = first_valid + counts["expected"] - 1
    assert stats.close_interval().extended_highest_sequence == extended
