"""When a stream app worker seeks an input partition back to its committed offset
(stream_apps/consumer.py, change 3): records waiting past a committed offset that has not moved
for the watch's time, once per stall; and where a seek back puts the changelogs (change 5)."""

from __future__ import annotations

from faust.types import TP

from stream_apps.consumer import StallWatch, recovery_positions

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


def test_changelogs_go_back_to_where_recovery_reads_them() -> None:
    active_tp, standby_tp, input_tp = TP("c", 0), TP("c", 1), TP("in", 0)
    unplanned, new = TP("c", 2), TP("c", 3)
    positions = recovery_positions(
        [active_tp, standby_tp, unplanned, new],
        ({active_tp, new}, {active_tp: 30, new: None}),
        ({standby_tp}, {standby_tp: -1}),
    )
    # Active: the last applied offset; standby with nothing applied: the start; a partition
    # recovery has not worked out yet, or does not read, is left to it.
    assert positions == {active_tp: 30, standby_tp: 0}
    assert input_tp not in recovery_positions([input_tp], (set(), {}), (set(), {}))
