"""Which partition a record key is in: as the producers place it.

govbus producers use librdkafka's ``murmur2_random`` partitioner (govbus/vocabulary/kafka.py),
which for a non-null key is the Java client's default: ``(murmur2(key) & 0x7fffffff) % n``.
The murmur2 function is aiokafka's (a dependency of faust-streaming), a transcription of Java's
``Utils.murmur2``; tests/integration/test_lookup.py holds it to where the broker put records.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_of(key: str, partitions: int) -> int:
    return (int(murmur2(key.encode("utf-8"))) & 0x7FFFFFFF) % partitions
