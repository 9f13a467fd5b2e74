"""Per-department API keys of the lookup service (article 22: identity before any data).

Why API keys and not mutual TLS: the service authenticates departments over plain HTTP on the
platform's network today; a key per department is issued with the department's SCRAM password
by ``govbus apply`` (one step the operator already runs) and works with any HTTP client. The
platform CA and TLS listeners are being added separately; a TLS-terminating proxy in front of
the service then protects the key in transit without changing this scheme.

- The department's copy: ``<state_dir>/secrets/lookup-keys/<department id>.key`` (mode 0600,
  like its SCRAM password), generated once (``secrets.token_urlsafe(32)``: 256 random bits) and
  handed to the department the way its password is.
- The service's copy: ``<state_dir>/lookup/api-keys.json``, ``{"sha256 of the key": "<id>"}``.
  Only the SHA-256 is kept: a stolen file gives no key. A fast hash suffices because the keys
  are random 256-bit values (a slow password hash protects guessable secrets; these are not).
- Revocation: delete the department's key file and its line (``govbus apply`` issues a new key
  to a registered department that has none); a department removed from the catalog loses its
  line at the next ``govbus apply``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from govbus.vocabulary.secrets import ensure_secret, read_secret, secret_path

KEY_KIND = "lookup-keys"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def registry_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / "lookup" / "api-keys.json"


def key_path(state_dir: str | Path, department_id: str) -> Path:
    return secret_path(state_dir, department_id, KEY_KIND).with_suffix(".key")


@dataclass(frozen=True)
class Issued:
    department: str
    path: Path  # the department's copy
    new: bool


def issue_keys(state_dir: str | Path, department_ids: Iterable[str]) -> list[Issued]:
    """Give every department a key (a new one only if it has none) and rewrite the registry
    with exactly these departments' key hashes."""
    out: list[Issued] = []
    hashes: dict[str, str] = {}
    for dept in sorted(set(department_ids)):
        path = key_path(state_dir, dept)
        existed = path.exists() and path.read_text(encoding="utf-8").strip() != ""
        if not existed:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o700)
            path.parent.parent.chmod(0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_urlsafe(32) + "\n")
        hashes[key_hash(path.read_text(encoding="utf-8").strip())] = dept
        out.append(Issued(dept, path, not existed))
    registry = registry_path(state_dir)
    registry.parent.mkdir(parents=True, exist_ok=True)
    tmp = registry.with_suffix(".tmp")
    tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(registry)
    return out


def read_key(state_dir: str | Path, department_id: str) -> str | None:
    """The department's key (its copy), or None."""
    try:
        return key_path(state_dir, department_id).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


class KeyRegistry:
    """The service's view of the keys: ``department(key)`` is the holder's id or None.

    ``refresh`` re-reads the file when it changed (``govbus apply`` issued or removed a key);
    the service calls it every few seconds.
    """

    def __init__(self, state_dir: str | Path) -> None:
        self.path = registry_path(state_dir)
        self._mtime: float | None = None
        self._hashes: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._hashes, self._mtime = {}, None
            return
        if mtime != self._mtime:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._hashes = {str(h): str(d) for h, d in data.items()}
            self._mtime = mtime

    def __len__(self) -> int:
        return len(self._hashes)

    def department(self, key: str) -> str | None:
        return self._hashes.get(key_hash(key))


def platform_secret(state_dir: str | Path, name: str) -> str:
    """A secret the service's instances share (``secrets/apps/<name>``): the token an instance
    shows when it forwards a lookup to another, and the HMAC key of hashed keys in the audit."""
    return read_secret(state_dir, name, "apps") or ensure_secret(state_dir, name, "apps")
