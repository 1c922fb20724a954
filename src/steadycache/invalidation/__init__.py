"""Invalidation with an owner: event routing, the invalidation bus on Redis Streams,
database-driven invalidation (PostgreSQL ``LISTEN/NOTIFY``, SQLite outbox) and the staleness
auditor. The bus and the PostgreSQL invalidator need the ``redis`` and ``postgres`` extras:
import them from their modules (``steadycache.invalidation.bus``, ``.postgres``)."""

from steadycache.invalidation.auditor import AuditReport, Offender, StalenessAuditor
from steadycache.invalidation.router import EventRouter, InvalidationTarget, RouterCounters
from steadycache.invalidation.sqlite_outbox import SqliteOutboxInvalidator

__all__ = [
    "AuditReport",
    "EventRouter",
    "InvalidationTarget",
    "Offender",
    "RouterCounters",
    "SqliteOutboxInvalidator",
    "StalenessAuditor",
]
