"""Which partition a record key is in: as the producers place it.

govbus producers use librdkafka's ``murmur2_random`` partitioner (govbus/vocabulary/kafka.py),
which for a non-null key is the Java client's default: ``(murmur2(key) & 0x7fffffff) % n``.
The murmur2 function is aiokafka's (a dependency of faust-streaming), a transcription of Java's
``Utils.murmur2``; tests/integration/test_lookup.py holds it to where the broker put records.
The lookup service routes a key to the instance holding its partition; the usage audit reads
a department's chain head in the partition its key is in (govbus.subscribe.audit).
"""

from __future__ import annotations


def partition_of(key: str | bytes, partitions: int) -> int:
    # Imported here: aiokafka's package takes ~70 ms to import, which the SDKs' users would
    # otherwise pay at start for one hash function.
    from aiokafka.partitioner import murmur2

    raw = key.encode("utf-8") if isinstance(key, str) else key
    return (int(murmur2(raw)) & 0x7FFFFFFF) % partitions
