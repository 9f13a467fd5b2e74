"""Moved to tests/integration/fixtures.py (``Namespace``); kept for an import of a unit test."""

from tests.integration.fixtures import Namespace

__all__ = ["Namespace"]
