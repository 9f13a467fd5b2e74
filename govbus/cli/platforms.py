"""``--platform ID``: point a command at one named platform (govbus.vocabulary.platforms).

``govbus --platform tianning broker start --port 36900 --title 天宁区 --level district``
describes the platform (once; later starts may omit the flags) and starts its own cluster;
every other command with ``--platform tianning`` then uses that cluster, catalog and secrets.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from govbus.vocabulary.config import Settings
from govbus.vocabulary.platforms import (
    LEVELS,
    Platform,
    PlatformError,
    check_id,
    platform_dir,
    platform_settings,
    read_platform,
    write_platform,
)


def add_platform_options(parser: argparse.ArgumentParser) -> None:
    """The flags that describe a platform when ``broker start`` creates it."""
    group = parser.add_argument_group("named platform (with --platform ID)")
    group.add_argument(
        "--port", type=int, help="the platform broker's base port (port+1: its controller)"
    )
    group.add_argument("--title", help="the platform's name, e.g. 天宁区 or 常州市")
    group.add_argument("--level", choices=LEVELS, help="district, city or province")
    group.add_argument(
        "--catalog-dsn", help="its catalog database (default: SQLite in its directory)"
    )
    parser.set_defaults(describes_platform=True)


def select_platform(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings of ``--platform`` (or the ``platform`` setting); unchanged without one.

    ``broker start`` may name a platform that does not exist yet: it describes it first
    (``describe_platform``), so here it gets the root settings with the id recorded."""
    platform_id = getattr(args, "platform", None) or settings.platform
    if not platform_id:
        return settings
    root = replace(settings, platform="")
    check_id(platform_id)
    if getattr(args, "describes_platform", False):
        return replace(root, platform=platform_id)
    return platform_settings(root, platform_id)


def describe_platform(args: argparse.Namespace, settings: Settings) -> Settings:
    """For ``broker start``: record the platform's description from the flags (merged with
    the one on file) and return its settings; without ``--platform`` the flags are refused."""
    given = {
        k: v
        for k, v in (
            ("broker_port", args.port),
            ("title", args.title),
            ("level", args.level),
            ("catalog_dsn", args.catalog_dsn),
        )
        if v is not None
    }
    if not settings.platform:
        if given:
            raise PlatformError(
                "--port, --title, --level and --catalog-dsn describe a named platform: "
                "add --platform ID before the command (`govbus --platform city broker start ...`)"
            )
        return settings
    root = replace(settings, platform="")
    if (platform_dir(root, settings.platform) / "platform.json").is_file():
        current = read_platform(root, settings.platform)
        platform = replace(current, **given)
        if (
            platform.broker_port != current.broker_port
            and (platform_dir(root, settings.platform) / "broker" / "cluster.json").is_file()
        ):
            raise PlatformError(
                f"platform {settings.platform!r} was formatted on port {current.broker_port}; "
                "`govbus --platform ID broker reset --yes` first to move it"
            )
    else:
        missing = [
            flag
            for flag, key in (("--port", "broker_port"), ("--title", "title"), ("--level", "level"))
            if key not in given
        ]
        if missing:
            raise PlatformError(
                f"platform {settings.platform!r} is new: give {', '.join(missing)} "
                "(e.g. --port 36900 --title 天宁区 --level district)"
            )
        platform = Platform(
            id=settings.platform,
            title=given["title"],
            level=given["level"],
            broker_port=given["broker_port"],
            catalog_dsn=given.get("catalog_dsn", ""),
        )
    write_platform(root, platform)
    return platform_settings(root, platform.id)
