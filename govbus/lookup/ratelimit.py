"""A token bucket per department: ``rate`` requests per second on average, ``burst`` at once.

A department above its rate is refused with ``rate-limited`` (429) and a ``Retry-After``; one
department's load cannot starve the others' lookups.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from govbus.lookup.errors import LookupRefused


class RateLimiter:
    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # department -> (tokens, at)

    def take(self, department: str) -> None:
        """Spend one token of ``department``; ``rate-limited`` if it has none."""
        now = self.clock()
        tokens, at = self._buckets.get(department, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[department] = (tokens, now)
            wait = (1 - tokens) / self.rate
            raise LookupRefused(
                "rate-limited",
                f"department {department} is above its limit of {self.rate:g} lookups/s "
                f"(burst {self.burst:g}); retry in {wait:.2f} s",
            )
        self._buckets[department] = (tokens - 1, now)

    def retry_after(self, department: str) -> float:
        tokens, _ = self._buckets.get(department, (self.burst, 0.0))
        return max(0.0, (1 - tokens) / self.rate)
