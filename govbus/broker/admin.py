"""The broker operations reconcilers are built from, with errors that name what failed.

Each function waits for the broker's answer: an operation either took effect or raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, cast

from confluent_kafka import KafkaError
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from govbus.vocabulary.acls import Acl
from govbus.vocabulary.errors import ServiceUnavailable

SCRAM_ITERATIONS = 8192
TIMEOUT = 30.0


class AdminError(ServiceUnavailable):
    """A broker admin operation failed; the message names the object and the broker's reason."""


def wait_for(futures: Mapping[Any, Future[Any]], what: str, ignore: Iterable[int] = ()) -> None:
    """Wait for every future of an admin call; raise one AdminError naming each failure."""
    ignored = set(ignore)
    errors = []
    for key, fut in futures.items():
        try:
            fut.result(timeout=TIMEOUT)
        except Exception as exc:  # KafkaException from the broker, TimeoutError from result()
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() in ignored:
                continue
            reason = err.str() if isinstance(err, KafkaError) else str(exc)
            if not reason:  # a timeout carries no text: say what it means
                reason = (
                    f"no answer from the broker within {TIMEOUT:.0f} s; check that it runs "
                    "(`govbus broker status`) and that bootstrap_servers points at it"
                )
            errors.append(f"{getattr(key, 'name', key)}: {reason}")
    if errors:
        raise AdminError(f"{what} failed: " + "; ".join(errors))


def until_visible(check: Callable[[], bool], what: str) -> None:
    """Wait until the broker shows a change the controller has committed.

    The admin call returns once the controller commits; the broker applies the new metadata a
    moment later. A client that connects in between would be refused (an ACL not yet there) or
    let in (an ACL not yet gone), so every change here waits until the broker reports it.
    """
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise AdminError(f"{what}: committed, but the broker did not show it within {TIMEOUT}s")
        time.sleep(0.05)


def upsert_scram_user(admin: AdminClient, user: str, password: str) -> None:
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upsertion = UserScramCredentialUpsertion(user, info, password.encode("utf-8"), None)
    what = f"creating SCRAM user {user!r}"
    wait_for(admin.alter_user_scram_credentials([upsertion]), what)
    until_visible(lambda: user in scram_users(admin), what)


def delete_scram_user(admin: AdminClient, user: str) -> None:
    deletion = UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)
    what = f"deleting SCRAM user {user!r}"
    wait_for(admin.alter_user_scram_credentials([deletion]), what)
    until_visible(lambda: user not in scram_users(admin), what)


def scram_users(admin: AdminClient) -> set[str]:
    # Without a user list the call returns one future for all users (the stubs allow a dict too).
    future = cast("Future[dict[str, Any]]", admin.describe_user_scram_credentials())
    return set(future.result(timeout=TIMEOUT))


def create_topic(
    admin: AdminClient,
    name: str,
    partitions: int = 3,
    replication: int = -1,
    config: dict[str, str] | None = None,
    exist_ok: bool = True,
) -> None:
    topic = NewTopic(name, partitions, replication, config=config or {})
    ignore = [KafkaError.TOPIC_ALREADY_EXISTS] if exist_ok else []
    wait_for(admin.create_topics([topic]), f"creating topic {name!r}", ignore)


def delete_topic(admin: AdminClient, name: str) -> None:
    wait_for(
        admin.delete_topics([name]),
        f"deleting topic {name!r}",
        [KafkaError.UNKNOWN_TOPIC_OR_PART],
    )


def create_acls(admin: AdminClient, acls: Iterable[Acl]) -> None:
    wanted = list(dict.fromkeys(acls))  # the broker API rejects duplicates
    if wanted:
        wait_for(admin.create_acls([a.binding() for a in wanted]), "creating ACLs")
        until_visible(lambda: set(wanted) <= list_acls(admin), "creating ACLs")


def delete_acls(admin: AdminClient, acls: Iterable[Acl]) -> None:
    filters = [
        AclBindingFilter(
            a.resource_type,
            a.resource_name,
            a.pattern,
            a.principal,
            "*",
            a.operation,
            a.permission,
        )
        for a in dict.fromkeys(acls)
    ]
    if filters:
        wait_for(admin.delete_acls(filters), "deleting ACLs")
        gone = set(acls)
        until_visible(lambda: not gone & list_acls(admin), "deleting ACLs")


def list_acls(admin: AdminClient) -> set[Acl]:
    """Every binding on the cluster (ALLOW and DENY) on any host."""
    # None is the documented wildcard for name, principal and host; the stubs say str.
    wildcard = cast(str, None)
    any_filter = AclBindingFilter(
        ResourceType.ANY,
        wildcard,
        ResourcePatternType.ANY,
        wildcard,
        wildcard,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    bindings = admin.describe_acls(any_filter).result(timeout=TIMEOUT)
    return {
        Acl(b.restype, b.name, b.resource_pattern_type, b.principal, b.operation, b.permission_type)
        for b in bindings
        if b.permission_type in (AclPermissionType.ALLOW, AclPermissionType.DENY)
    }
