"""When a stream app worker seeks an input partition back to its committed offset
(stream_apps/consumer.py, change 3): records waiting past a committed offset that has not moved
for the watch's time, once per stall; and where a seek back puts the changelogs (change 5)."""

from __future__ import annotations

from faust.types import TP

from stream_apps.consumer import StallWatch, recovery_applied, rewind_to

P0, P1 = TP("gov.t", 0), TP("gov.t", 1)


def test_a_partition_is_stalled_once_its_committed_offset_sat_still_with_records_waiting() -> None:
    watch = StallWatch(after=15)
    assert not watch.stalled(P0, committed=68, end=1027, now=100)  # first seen: the clock starts
    assert not watch.stalled(P0, committed=68, end=1027, now=114.9)
    assert watch.stalled(P0, committed=68, end=1027, now=115)
    # Sought back: the clock starts again, so a partition is not sought every round.
    assert not watch.stalled(P0, committed=68, end=1027, now=120)
    assert watch.stalled(P0, committed=68, end=1030, now=130)


def test_moving_commits_or_nothing_waiting_is_never_a_stall() -> None:
    watch = StallWatch(after=15)
    for step in range(10):  # commits move every round: busy, not stalled
        assert not watch.stalled(P0, committed=100 * step, end=5000, now=20.0 * step)
    for step in range(10):  # caught up: nothing waits, whatever the time
        assert not watch.stalled(P1, committed=500, end=500, now=20.0 * step)
    # Records arrive after a long idle time: the clock starts from their first sight.
    assert not watch.stalled(P1, committed=500, end=510, now=1000)
    assert watch.stalled(P1, committed=500, end=510, now=1015)


def test_a_partition_given_away_starts_afresh_when_it_comes_back() -> None:
    watch = StallWatch(after=15)
    assert not watch.stalled(P0, committed=5, end=9, now=0)
    assert not watch.stalled(P1, committed=5, end=9, now=0)
    watch.forget({P1})  # a rebalance gave P0 to another worker
    assert not watch.stalled(P0, committed=5, end=9, now=20)  # back: first sight again
    assert watch.stalled(P1, committed=5, end=9, now=20)


def test_changelogs_go_back_only_past_records_recovery_did_not_apply() -> None:
    active_tp, standby_tp, input_tp = TP("c", 0), TP("c", 1), TP("in", 0)
    unplanned, new = TP("c", 2), TP("c", 3)
    applied = recovery_applied(
        [active_tp, standby_tp, unplanned, new],
        ({active_tp, new}, {active_tp: 30, new: None}),
        ({standby_tp}, {standby_tp: -1}),
    )
    # A partition recovery has not worked out yet, or does not read, is left to it.
    assert applied == {active_tp: 30, standby_tp: -1}
    assert recovery_applied([input_tp], (set(), {}), (set(), {})) == {}
    # Seen: recovery sought to 0 with nothing applied, the records 0-30 fetched and thrown
    # away: the position 31 goes back to 0.
    assert rewind_to(-1, 31) == 0
    assert rewind_to(-1, 1) == 0  # even one record thrown away
    assert rewind_to(-1, 0) is None  # nothing fetched yet
    # After a recovery: applied up to 30, the position at 31 (the end): left alone.
    assert rewind_to(30, 31) is None
    assert rewind_to(30, 40) == 30  # 31-39 fetched, not applied: from 30 again, as recovery
