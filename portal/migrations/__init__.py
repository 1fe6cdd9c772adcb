"""Alembic migrations: the schema is owned here (env.py, versions/)."""
