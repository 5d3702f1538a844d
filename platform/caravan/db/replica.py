"""Read-heavy reports from a streaming replica (``DATABASE_REPLICA_URL``), through a router.

Only what is marked reads from the replica: a selector decorated with :func:`replica_report`
(today the value dashboard's ``segment_summary`` and ``quadrant_summary``, which read figures the
nightly job computes, so a replica a few seconds behind shows the same). Every other read and every
write stay on ``default``; inside a transaction the report reads ``default`` too, so a transaction
always sees its own writes.

The replica connection is put on the agency of the ``default`` connection before each routed read
(django-tenants switches only ``default``), so tenant isolation holds there exactly as on the
primary: same search_path, same fences (``require_agency()`` and friends read ``default``).
Raw SQL run with ``connection.cursor()`` does not consult routers and stays on ``default``.
"""
from contextvars import ContextVar
from functools import wraps

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
_reporting: ContextVar[bool] = ContextVar("caravan_replica_report", default=False)


def replica_report(func):
    """ORM reads inside ``func`` go to the replica when one is configured."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        token = _reporting.set(True)
        try:
            return func(*args, **kwargs)
        finally:
            _reporting.reset(token)

    return wrapper


class ReplicaRouter:
    """Sends reads inside :func:`replica_report` to ``replica``, on the current agency."""

    def db_for_read(self, model, **hints):
        if not _reporting.get() or REPLICA not in connections.settings:
            return None
        primary = connections[DEFAULT_DB_ALIAS]
        if primary.in_atomic_block:
            return None
        replica = connections[REPLICA]
        if (replica.schema_name, replica.include_public_schema) != (primary.schema_name, primary.include_public_schema):
            replica.set_tenant(primary.tenant, primary.include_public_schema)
        return REPLICA

    def db_for_write(self, model, **hints):
        return None

    def allow_relation(self, obj1, obj2, **hints):
        return True if {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA} else None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db == REPLICA else None  # the replica replays the primary's WAL
