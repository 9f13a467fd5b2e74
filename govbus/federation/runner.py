"""``govbus --platform <target> federation run``: the flows into one platform, kept running.

For every active agreement whose target is this platform the runner keeps one MirrorMaker 2
process (govbus.broker.mirrormaker) with the flow's configuration (govbus.federation.mm2),
logging in as the flow's own principal on both clusters. Each loop it

- starts the flows of newly active agreements, and stops the flow of a revoked one (its ACLs
  are removed by ``federation revoke`` / ``apply``: the flow could not read any more anyway);
- starts again a process that exited on its own (MM2 exits on a fatal error; a peer that is
  down only makes it retry), counting it in ``govbus_federation_mirror_restarts``;
- measures each flow's lag (govbus.federation.lag) into ``govbus_federation_lag_records`` and
  ``govbus_federation_lag_seconds``;
- starts again a flow that is stalled: records waiting, both clusters answering, and not one
  more copy for ``stall_seconds`` of measurements (time while a cluster does not answer does
  not count). Seen on a loaded machine after the target cluster restarted:
  MM2's worker rejoined its group and then started no task for minutes; a fresh process
  resumes from the stored offsets at once.

MirrorMaker keeps its source offsets on the target (``mm2-offsets.<source>.internal``), so a
restart, of the runner, of MM2 or of either cluster, resumes where the last acknowledged copy
ended: at least once, nothing acknowledged at the source is lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException

from govbus.broker.classpath import Classpath
from govbus.broker.mirrormaker import MirrorProcess, install_mirror
from govbus.federation import lag as lag_probe
from govbus.federation import metrics
from govbus.federation.agreements import AgreementBook
from govbus.federation.mm2 import PASSWORD_KEY, Tuning, render, to_text
from govbus.federation.needs import Flow, lag_group, needs_of
from govbus.vocabulary.config import Settings
from govbus.vocabulary.kafka import client_config
from govbus.vocabulary.platforms import platform_settings, root_settings
from govbus.vocabulary.secrets import PasswordStore

log = logging.getLogger(__name__)


@dataclass
class _Running:
    flow: Flow
    process: MirrorProcess
    config: str
    restarts: int = 0
    copied: int = -1  # the copies' end offsets at the last progress
    progress_at: float = field(default_factory=time.monotonic)


@dataclass
class FlowRunner:
    """The flows into ``settings.platform``; ``step`` does one loop, ``run`` loops."""

    settings: Settings
    tuning: Tuning = field(default_factory=Tuning)
    lag_interval: float = 10.0
    stall_seconds: float = 120.0
    report: Callable[[str], None] = print
    heap: str = "256m"
    _classpath: Classpath | None = None
    _running: dict[str, _Running] = field(default_factory=dict)
    _last_lag: float = 0.0

    @property
    def root(self) -> Settings:
        return root_settings(self.settings)

    @property
    def directory(self) -> Path:
        return self.settings.state_dir / "federation" / "mirror"

    def flows(self) -> list[Flow]:
        book = AgreementBook(self.root.state_dir)
        platform = self.settings.platform
        return needs_of(platform, book.all(), self.settings.naming).flows

    def _client_conf(self, settings: Settings, user: str) -> dict[str, Any]:
        return client_config(settings, user, PasswordStore(settings.state_dir)(user))

    def _config(self, flow: Flow) -> tuple[dict[str, str], str]:
        """The flow's properties and its password file's text."""
        source = platform_settings(self.root, flow.source)
        target = self.settings
        run_dir = self.directory / flow.agreement
        password_file = run_dir / "passwords.properties"
        props = render(
            flow,
            self._client_conf(source, flow.user),
            self._client_conf(target, flow.user),
            str(password_file),
            self.tuning,
        )
        secrets = "".join(
            f"{alias}.{PASSWORD_KEY}={PasswordStore(s.state_dir)(flow.user)}\n"
            for alias, s in ((flow.source, source), (flow.target, target))
        )
        return props, secrets

    def _start(self, flow: Flow, restarts: int = 0) -> _Running:
        if self._classpath is None:
            self._classpath = install_mirror(
                self.settings.kafka_version, self.settings.cache_dir, self.settings.maven_repo
            )
        run_dir = self.directory / flow.agreement
        run_dir.mkdir(parents=True, exist_ok=True)
        props, secrets = self._config(flow)
        password_file = run_dir / "passwords.properties"
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets)
        properties = run_dir / "mm2.properties"
        text = to_text(props)
        properties.write_text(text, encoding="utf-8")
        process = MirrorProcess(run_dir, self._classpath, self.heap)
        process.start(properties, flow.target)
        metrics.FLOW_UP.labels(flow=f"{flow.source}->{flow.target}").set(1)
        self.report(
            f"started flow {flow.source} → {flow.target} (agreement {flow.agreement}, "
            f"pid {process.pid}): {', '.join(flow.topics)}"
        )
        return _Running(flow, process, text, restarts)

    def _stop(self, running: _Running, why: str) -> None:
        running.process.stop()
        name = f"{running.flow.source}->{running.flow.target}"
        metrics.FLOW_UP.labels(flow=name).set(0)
        for topic in running.flow.topics:
            metrics.LAG_RECORDS.labels(flow=name, topic=topic).set(0)
            metrics.LAG_SECONDS.labels(flow=name, topic=topic).set(0)
        self.report(f"stopped flow {running.flow.source} → {running.flow.target}: {why}")

    def step(self) -> None:
        wanted = {f.agreement: f for f in self.flows()}
        for agreement, running in list(self._running.items()):
            if agreement not in wanted:
                self._stop(running, f"agreement {agreement} is no longer active")
                del self._running[agreement]
            elif wanted[agreement] != running.flow:
                self._stop(running, f"agreement {agreement} changed")
                del self._running[agreement]
        for agreement, flow in wanted.items():
            current = self._running.get(agreement)
            if current is None:
                self._running[agreement] = self._start(flow)
            elif not current.process.running:
                running = current
                name = f"{flow.source}->{flow.target}"
                metrics.FLOW_UP.labels(flow=name).set(0)
                metrics.MIRROR_RESTARTS.labels(flow=name).inc()
                self.report(
                    f"flow {name} exited (code {running.process.exit_code}); starting it "
                    f"again. Last log lines:\n{running.process.log_tail()}"
                )
                self._running[agreement] = self._start(flow, running.restarts + 1)
        if time.monotonic() - self._last_lag >= self.lag_interval:
            self._last_lag = time.monotonic()
            for agreement, running in list(self._running.items()):
                lags = self.measure(running.flow)
                if not lags:  # a cluster did not answer: no judgement, the clock starts over
                    running.progress_at = time.monotonic()
                elif self._stalled(running, lags):
                    name = f"{running.flow.source}->{running.flow.target}"
                    metrics.MIRROR_RESTARTS.labels(flow=name).inc()
                    self._stop(
                        running,
                        f"stalled: records waiting and no copy for "
                        f"{self.stall_seconds:.0f} s; starting it again",
                    )
                    self._running[agreement] = self._start(running.flow, running.restarts + 1)

    def _stalled(self, running: _Running, lags: list[lag_probe.TopicLag]) -> bool:
        copied = sum(lag.copied for lag in lags)
        now = time.monotonic()
        if running.copied < 0:  # the first measurement: the clock runs from the start
            running.copied = copied
            return False
        if copied != running.copied or not any(lag.records for lag in lags):
            running.copied, running.progress_at = copied, now
            return False
        return now - running.progress_at > self.stall_seconds

    def measure(self, flow: Flow) -> list[lag_probe.TopicLag]:
        """Set the lag gauges of ``flow``; a cluster that does not answer leaves them as
        they were (and is reported), the alert then fires on their age, not on a guess."""
        source_settings = platform_settings(self.root, flow.source)
        name = f"{flow.source}->{flow.target}"
        found: list[lag_probe.TopicLag] = []
        consumers = [
            Consumer(
                {
                    **self._client_conf(s, flow.user),
                    "group.id": lag_group(flow.user),
                    "enable.auto.commit": False,
                    "enable.partition.eof": False,
                }
            )
            for s in (source_settings, self.settings)
        ]
        try:
            for topic in flow.topics:
                found.append(lag_probe.topic_lag(consumers[0], consumers[1], flow.source, topic))
        except KafkaException as exc:
            self.report(f"flow {name}: lag not measured ({exc.args[0]})")
        finally:
            for c in consumers:
                c.close()
        for item in found:
            metrics.LAG_RECORDS.labels(flow=name, topic=item.topic).set(item.records)
            metrics.LAG_SECONDS.labels(flow=name, topic=item.topic).set(item.seconds)
        # A partial measurement says nothing about the flow's progress.
        return found if len(found) == len(flow.topics) else []

    def stop(self) -> None:
        for running in self._running.values():
            self._stop(running, "the runner stops")
        self._running.clear()

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        try:
            while not stop.is_set():
                self.step()
                stop.wait(interval)
        finally:
            self.stop()
