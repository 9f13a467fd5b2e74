"""One error tree for govbus: every error a user can cause or meet is a ``GovbusError``.

The CLI prints a ``GovbusError`` as one line (what failed and what to do) and exits 1; anything
else is a bug and keeps its traceback. Three kinds, so a caller can decide without reading
messages:

- ``UserError``: the input is wrong (a file, a record, a flag, a catalog change); fix it and
  try again. Most errors are this.
- ``ServiceUnavailable``: a service govbus needs (Kafka, PostgreSQL, Java, Maven) cannot be
  reached or started; try again when it is back.
- ``Conflict``: the request clashes with the current state (someone else answered first, a
  resource is held by another department); look at the state and decide.

Each also derives from the builtin it replaced (``ValueError``, ``RuntimeError``), so existing
``except ValueError`` callers keep working.
"""

from __future__ import annotations


class GovbusError(Exception):
    """Base of every error govbus raises on purpose; its message is for the user."""


class UserError(GovbusError, ValueError):
    """Bad input: the message names what (file, record, field) and the rule it breaks."""


class ServiceUnavailable(GovbusError, RuntimeError):
    """A service govbus needs is not there or refused to work; the message says which."""


class Conflict(GovbusError, RuntimeError):
    """The request clashes with the state someone else made; the message says with what."""
