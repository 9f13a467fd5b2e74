"""``govbus.vocabulary.kafka.arrived``: what has arrived, never waiting for a batch to fill.

``Consumer.consume(n, timeout)`` returns only with ``n`` records or after ``timeout``; the
subscriber's loop, the download and the lookup loader (reading to a topic's end) must therefore
ask with timeout 0 and wait only for a first record (``poll``). A fake consumer records every
call, so a blocking batch call would show.
"""

from __future__ import annotations

from typing import Any

from govbus.vocabulary.kafka import arrived

WAIT = 0.5


class FakeConsumer:
    def __init__(self, queued: list[str], arriving: str | None) -> None:
        self.queued = list(queued)  # already in the local queue
        self.arriving = arriving  # what poll would return when it arrives
        self.calls: list[tuple[str, int | None, float]] = []

    def consume(self, num: int, timeout: float) -> list[Any]:
        self.calls.append(("consume", num, timeout))
        out, self.queued = self.queued[:num], self.queued[num:]
        return out

    def poll(self, timeout: float) -> Any:
        self.calls.append(("poll", None, timeout))
        got, self.arriving = self.arriving, None
        if got is not None:
            self.queued.extend(["after-1", "after-2"])  # arrived together with it
        return got


def test_a_lone_record_is_handed_over_without_waiting_for_a_batch() -> None:
    fake = FakeConsumer([], "first")
    assert arrived(fake, 500, WAIT) == ["first", "after-1", "after-2"]  # type: ignore[arg-type]
    # Only poll may wait; every consume call takes just what is there.
    assert [c for c in fake.calls if c[0] == "consume" and c[2] != 0] == []
    assert ("poll", None, WAIT) in fake.calls


def test_queued_records_are_taken_at_once_up_to_the_limit() -> None:
    fake = FakeConsumer([f"r{i}" for i in range(5)], "never")
    assert arrived(fake, 3, WAIT) == ["r0", "r1", "r2"]  # type: ignore[arg-type]
    assert fake.calls == [("consume", 3, 0)]  # no poll: something had arrived


def test_nothing_arrived_gives_an_empty_batch_and_one_wait() -> None:
    fake = FakeConsumer([], None)
    assert arrived(fake, 1, WAIT) == []  # type: ignore[arg-type]
    assert fake.calls == [("consume", 1, 0), ("poll", None, WAIT)]
