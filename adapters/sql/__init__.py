"""The task store on SQLAlchemy Core: PostgreSQL (psycopg 3) or an embedded SQLite file."""

from adapters.sql.engine import Waits, create_engine_for
from adapters.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlUnitOfWork", "Waits", "create_engine_for"]
