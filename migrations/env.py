"""Alembic environment: peek runs migrations in-process on a connection it already holds."""

from __future__ import annotations

from alembic import context

from peek.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
