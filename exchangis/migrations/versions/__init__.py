"""Alembic revisions of the metadata schema, oldest first."""
