"""Named platforms side by side on one machine (article 13: city, districts, province).

Article 13 makes the city platform the core: each district (辖市、区) runs or joins a platform
that interconnects with the city's, and the city with the province's. For tests and the demo
several platforms run on one machine; each is a state directory of its own under the root
state directory::

    <state_dir>/platforms/<id>/platform.json    id, title (e.g. 天宁区), level, broker port
    <state_dir>/platforms/<id>/broker/...        its own Kafka cluster (govbus.broker.cluster)
    <state_dir>/platforms/<id>/catalog.db        its own catalog (unless catalog_dsn is given)
    <state_dir>/platforms/<id>/secrets/...       its own admin, departments and apps

so every command run with ``--platform <id>`` sees that platform's cluster, catalog, users and
ACLs and nothing of the others'. A platform id is what MirrorMaker 2 uses as the cluster alias
and what prefixes the topics that arrive from it on a peer (``tianning.gov.<code>``), so it is
ASCII letters, digits and hyphens (no dot: the replication policy splits remote topic names on
dots); the Chinese name is the title.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from govbus.vocabulary.config import ConfigError, Settings
from govbus.vocabulary.errors import UserError

PLATFORMS_DIR = "platforms"
PLATFORM_FILE = "platform.json"
LEVELS = ("district", "city", "province")
_ID = re.compile(r"[a-z][a-z0-9-]{0,30}")


class PlatformError(UserError):
    """A platform is unknown or its description is wrong; the message says which and why."""


@dataclass(frozen=True)
class Platform:
    """One platform: ``id`` (alias on the wire), ``title`` (its name, e.g. 天宁区), ``level``
    (district, city or province), its broker's base port, and optionally its catalog DSN."""

    id: str
    title: str
    level: str
    broker_port: int
    catalog_dsn: str = ""


def check_id(platform_id: str) -> str:
    if not _ID.fullmatch(platform_id):
        raise PlatformError(
            f"platform id {platform_id!r}: use lower-case ASCII letters, digits and hyphens, "
            "starting with a letter, at most 31 characters (it prefixes the topics the platform "
            "sends to its peers; put the Chinese name in --title)"
        )
    return platform_id


def platforms_root(root: Settings) -> Path:
    return root.state_dir / PLATFORMS_DIR


def platform_dir(root: Settings, platform_id: str) -> Path:
    return platforms_root(root) / check_id(platform_id)


def read_platform(root: Settings, platform_id: str) -> Platform:
    path = platform_dir(root, platform_id) / PLATFORM_FILE
    if not path.is_file():
        known = ", ".join(p.id for p in list_platforms(root)) or "none yet"
        raise PlatformError(
            f"no platform {platform_id!r} under {platforms_root(root)} (known: {known}); "
            f"create it with `govbus --platform {platform_id} broker start --port PORT "
            "--title NAME --level LEVEL`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Platform(**data)
    except (ValueError, TypeError) as exc:
        raise PlatformError(f"{path}: not a platform description ({exc})") from exc


def write_platform(root: Settings, platform: Platform) -> Path:
    check_id(platform.id)
    if platform.level not in LEVELS:
        raise PlatformError(
            f"platform {platform.id!r}: level {platform.level!r} is not one of {', '.join(LEVELS)}"
        )
    directory = platform_dir(root, platform.id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PLATFORM_FILE
    path.write_text(json.dumps(asdict(platform), ensure_ascii=False, indent=2) + "\n", "utf-8")
    return path


def list_platforms(root: Settings) -> list[Platform]:
    base = platforms_root(root)
    if not base.is_dir():
        return []
    return [
        read_platform(root, d.name)
        for d in sorted(base.iterdir())
        if (d / PLATFORM_FILE).is_file() and _ID.fullmatch(d.name)
    ]


def settings_for(root: Settings, platform: Platform) -> Settings:
    """``root``'s settings pointed at one platform: its state directory (cluster, secrets,
    default SQLite catalog), its broker port and catalog; the platform id is recorded so
    commands can name where they run."""
    if root.bootstrap_servers:
        raise ConfigError(
            "--platform selects a local platform's cluster; unset bootstrap_servers "
            "(GOVBUS_BOOTSTRAP_SERVERS) or drop --platform"
        )
    return replace(
        root,
        state_dir=platform_dir(root, platform.id),
        broker_port=platform.broker_port,
        catalog_dsn=platform.catalog_dsn,
        admin_password="",
        platform=platform.id,
    )


def platform_settings(root: Settings, platform_id: str) -> Settings:
    return settings_for(root, read_platform(root, platform_id))


def root_settings(settings: Settings) -> Settings:
    """The root (the directory holding ``platforms/``) of a platform's settings."""
    if not settings.platform:
        return settings
    return replace(settings, state_dir=settings.state_dir.parent.parent, platform="")
