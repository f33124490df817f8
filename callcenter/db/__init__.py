"""Persistence: SQLAlchemy 2 models and async sessions (SQLite by default, PostgreSQL for scale)."""
