"""Alembic environment: runs against the URL given by exchangis.migrations.alembic_config."""

from __future__ import annotations

from alembic import context

from exchangis.db import Base
from exchangis.runtime import make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    """Run migrations online with the package's engine settings."""
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
