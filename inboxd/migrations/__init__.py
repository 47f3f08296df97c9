"""Alembic migrations; applied by inboxd.db.migrate()."""
