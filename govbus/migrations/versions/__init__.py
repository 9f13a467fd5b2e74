"""Migration scripts (a package only so that installation ships them; Alembic skips this file)."""
