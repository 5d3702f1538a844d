"""Citus schema-based sharding: every agency schema a distributed schema (docs/operations.md,
"Past one database").

On plain PostgreSQL none of this does anything: Citus is detected by its ``citus_tables`` view,
which only the extension provides (tests stand one in with a temporary view to exercise the
checks). With Citus, a schema made by ``CREATE SCHEMA`` while
``citus.enable_schema_based_sharding`` is on is distributed, and so is every table a top-level
``CREATE TABLE`` adds to it, which is how the template snapshot creates them
(tenants/schemas.py). A schema made any other way (clone_schema()'s ``EXECUTE``, or the setting
off) is distributed here, and the local copy of its seeded rows truncated.
"""
from django.db import connection


def citus_present() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('citus_tables') IS NOT NULL")
        return cursor.fetchone()[0]


def distributed_schema(schema_name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM citus_schemas WHERE schema_name::text = %s)", [schema_name])
        return cursor.fetchone()[0]


def distribute_schema(schema_name: str) -> bool:
    """Distribute ``schema_name`` if Citus is present and has not already. True when it did."""
    if not citus_present() or distributed_schema(schema_name):
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT citus_schema_distribute(%s::regnamespace)", [schema_name])
        for table in _tables(schema_name):
            cursor.execute("SELECT truncate_local_data_after_distributing_table(%s::regclass)", [table])
    return True


def _tables(schema_name: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname", [schema_name])
        return [row[0] for row in cursor.fetchall()]


def undistributed_tables(schema_names: list[str]) -> dict[str, list[str]]:
    """Tables of these schemas that Citus does not know as distributed: {schema: [table, …]}.
    Empty on plain PostgreSQL."""
    if not schema_names or not citus_present():
        return {}
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')
              AND NOT EXISTS (SELECT 1 FROM citus_tables t WHERE t.table_name = c.oid::regclass)
            ORDER BY 1, 2""", [list(schema_names)])
        missing: dict[str, list[str]] = {}
        for schema, table in cursor.fetchall():
            missing.setdefault(schema, []).append(table)
    return missing
