"""Alembic migrations for the peek store, applied automatically when a store is opened."""
