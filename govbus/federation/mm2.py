"""The MirrorMaker 2 configuration of one flow (dedicated mode), rendered from the settings.

One flow ``source → target`` runs as one ``org.apache.kafka.connect.mirror.MirrorMaker``
process started with ``--clusters <target>`` (without it a one-way flow still builds a worker
for the reverse direction). Both clusters' client settings come from
``govbus.vocabulary.kafka.client_config`` (through ``java_client_properties``), so whatever
security the platforms' clients use (SASL/SCRAM today, TLS when the listeners get it) MM2 uses
too. The passwords stay out of the properties file: the JAAS lines refer to a second file of
mode 0600 through Kafka's ``FileConfigProvider`` (the connector configurations MM2 stores in
a target topic then hold the reference, not the secret).

Settings that matter on govbus's clusters (docs/federation.md has the reasons):

- every ``*.replication.factor`` follows the target's node count (MM2's defaults assume 3);
- ``offset-syncs.topic.location=target``: the source stays read-only for MM2;
- ``sync.topic.acls.enabled=false``: the receiving platform's own ACLs decide who reads a
  copy (MM2 would need admin rights to copy the source's, and copies only literal ones);
- ``emit.heartbeats.enabled=false``: heartbeats would need a topic outside the agreement;
- checkpoints and ``sync.group.offsets.enabled=true`` for the receiving consumers' groups, so
  a consumer that fails over finds its translated offsets on the target;
- topic names as an exact regex list (dots escaped), never a pattern wider than the agreement;
- ``plugin.discovery=service_load``: the jars of the pinned classpath all have ServiceLoader
  manifests (MM2 says so at start), so the reflective scan of every jar is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from govbus.federation.needs import Flow
from govbus.vocabulary.kafka import java_client_properties

PASSWORD_KEY = "password"


@dataclass(frozen=True)
class Tuning:
    """How often MM2 looks again (seconds) and the replication factor of what it creates."""

    refresh_seconds: int = 5
    checkpoint_seconds: int = 5
    replication_factor: int = 1
    tasks: int = 3


def _literal(text: str) -> str:
    """A regex matching ``text`` literally, as written in a properties file (where a backslash
    escapes: ``gov.a`` becomes ``gov\\\\.a``, read back as ``gov\\.a``)."""
    return re.escape(text).replace("\\", "\\\\")


def topics_regex(topics: tuple[str, ...]) -> str:
    """Exactly these topics, nothing wider than the agreement."""
    return "|".join(_literal(t) for t in topics)


def render(
    flow: Flow,
    source_conf: dict[str, Any],
    target_conf: dict[str, Any],
    password_file: str,
    tuning: Tuning = Tuning(),
) -> dict[str, str]:
    """mm2.properties of ``flow``; ``*_conf`` are client_config dicts of the mirror user on
    each cluster, whose passwords live in ``password_file`` under ``<alias>.password``."""
    src, tgt = flow.source, flow.target
    rf = str(tuning.replication_factor)
    props: dict[str, str] = {
        "clusters": f"{src},{tgt}",
        "config.providers": "file",
        "config.providers.file.class": (
            "org.apache.kafka.common.config.provider.FileConfigProvider"
        ),
    }
    for alias, conf in ((src, source_conf), (tgt, target_conf)):
        ref = f"${{file:{password_file}:{alias}.{PASSWORD_KEY}}}"
        for key, value in java_client_properties(conf, ref).items():
            props[f"{alias}.{key}"] = value
    props.update(
        {
            f"{src}->{tgt}.enabled": "true",
            f"{src}->{tgt}.topics": topics_regex(flow.topics),
            f"{src}->{tgt}.groups": "|".join(_literal(g) + ".*" for g in flow.groups) or "^$",
            f"{tgt}->{src}.enabled": "false",
            "replication.factor": rf,
            "offset-syncs.topic.replication.factor": rf,
            "checkpoints.topic.replication.factor": rf,
            "heartbeats.topic.replication.factor": rf,
            "config.storage.replication.factor": rf,
            "offset.storage.replication.factor": rf,
            "status.storage.replication.factor": rf,
            "offset-syncs.topic.location": "target",
            "sync.topic.acls.enabled": "false",
            "emit.heartbeats.enabled": "false",
            "emit.checkpoints.enabled": "true",
            "emit.checkpoints.interval.seconds": str(tuning.checkpoint_seconds),
            "sync.group.offsets.enabled": "true",
            "sync.group.offsets.interval.seconds": str(tuning.checkpoint_seconds),
            "refresh.topics.interval.seconds": str(tuning.refresh_seconds),
            "refresh.groups.interval.seconds": str(tuning.refresh_seconds),
            # One task per source partition (3 by default), and batches like the SDK's
            # producer: Connect's producer otherwise sends as soon as a record is there.
            "tasks.max": str(tuning.tasks),
            f"{tgt}.producer.linger.ms": "5",
            f"{tgt}.producer.batch.size": "262144",
            # Every Connect plugin on the pinned classpath has a ServiceLoader manifest; the
            # default (hybrid_warn) also scans every jar by reflection, slow on a busy machine.
            "plugin.discovery": "service_load",
        }
    )
    return props


def to_text(props: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in props.items())
