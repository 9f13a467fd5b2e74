"""Alembic migrations of the catalog database; run by ``CatalogStore.migrate``."""
