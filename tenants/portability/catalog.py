"""What an agency holds, read from PostgreSQL's catalogue (never a hard-coded list of tables).

- ``schema_tables(schema)``: every table of the agency's schema, so a future tenant app's tables
  are exported and restored without a code change.
- ``shared_tables()``: every public table with rows of one agency: ``tenants_agency`` itself, the
  tables with a foreign key to it (domains, events, billing account, feeds, inventory rows…) and,
  transitively, the tables keyed by those rows (a feed's runs and their quarantined records). Each
  comes with the SQL condition that selects one agency's rows (parameter ``%(agency)s``).
- ``migration_state(schema)``: the applied migrations recorded in a schema, per app.

The purge of a deleted agency, the export and the restore all read these, so they agree on what
"everything of this agency" is.
"""
from dataclasses import dataclass, field

from django.db import connection

AGENCY_TABLE = "tenants_agency"
# Shared tables never exported or restored with an agency: the export/restore jobs themselves.
NOT_EXPORTED = frozenset({"portability_agencyexport", "portability_agencyrestore"})


@dataclass
class ForeignKey:
    column: str
    target: str  # a public table
    target_column: str


@dataclass
class SharedTable:
    name: str
    condition: str  # SQL over the table's own columns selecting one agency's rows; uses %(agency)s
    keys: list[ForeignKey] = field(default_factory=list)  # foreign keys to tenants_agency or other shared tables
    parents: set[str] = field(default_factory=set)


def _fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def schema_tables(schema: str) -> list[str]:
    """Every ordinary or partitioned table of ``schema`` (not partitions, which their parent covers)."""
    return [row[0] for row in _fetch("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY c.relname""", [schema])]


def columns(schema: str, table: str) -> list[str]:
    """Columns in table order, without generated columns (COPY cannot load those)."""
    return [row[0] for row in _fetch("""
        SELECT a.attname FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
        ORDER BY a.attnum""", [schema, table])]


def sequences(schema: str) -> list[tuple[str, str, str]]:
    """(sequence, table, column) for every serial or identity column of ``schema``."""
    return _fetch("""
        SELECT s.relname, t.relname, a.attname FROM pg_class s
        JOIN pg_namespace n ON n.oid = s.relnamespace
        JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE s.relkind = 'S' AND n.nspname = %s ORDER BY s.relname""", [schema])


def foreign_keys(schema: str) -> list[tuple[str, str, str]]:
    """(table, constraint, definition) of every foreign key of ``schema``'s tables, definitions with
    qualified names (for dropping before a bulk load and adding back after it)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL search_path = pg_catalog")  # pg_get_constraintdef qualifies every name
        cursor.execute("""
            SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k
            JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND k.contype = 'f' ORDER BY c.relname, k.conname""", [schema])
        rows = cursor.fetchall()
        cursor.execute("SET LOCAL search_path = public")
    return rows


def plain_indexes(schema: str) -> list[tuple[str, str, str]]:
    """(table, index, definition) of ``schema``'s indexes that back no constraint (rebuilt after a bulk load)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL search_path = pg_catalog")  # pg_get_indexdef qualifies every name
        cursor.execute("""
            SELECT tc.relname, ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
            JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
            JOIN pg_class tc ON tc.oid = i.indrelid
            WHERE n.nspname = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
            ORDER BY ic.relname""", [schema])
        rows = cursor.fetchall()
        cursor.execute("SET LOCAL search_path = public")
    return rows


def tables_with_user_triggers(schema: str) -> list[str]:
    return [row[0] for row in _fetch("""
        SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND NOT t.tgisinternal ORDER BY c.relname""", [schema])]


def _public_foreign_keys() -> list[tuple[str, str, str, str]]:
    """(table, column, target table, target column) for single-column foreign keys inside public."""
    return _fetch("""
        SELECT c.relname, a.attname, t.relname, ta.attname FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_class t ON t.oid = k.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
        JOIN pg_attribute ta ON ta.attrelid = k.confrelid AND ta.attnum = k.confkey[1]
        WHERE k.contype = 'f' AND n.nspname = 'public' AND tn.nspname = 'public'
              AND array_length(k.conkey, 1) = 1
        ORDER BY c.relname, a.attname""")


def shared_tables() -> list[SharedTable]:
    """Public tables holding an agency's rows, parents before children (the order to restore in)."""
    fks = _public_foreign_keys()
    found: dict[str, SharedTable] = {AGENCY_TABLE: SharedTable(AGENCY_TABLE, "id = %(agency)s")}
    changed = True
    while changed:  # tables keyed by a table already found, until nothing new turns up
        changed = False
        for table, column, target, target_column in fks:
            if table in NOT_EXPORTED or table == target or target not in found:
                continue
            entry = found.setdefault(table, SharedTable(table, ""))
            if all(k.column != column for k in entry.keys):
                entry.keys.append(ForeignKey(column, target, target_column))
                entry.parents.add(target)
                changed = True
    conditions: dict[str, str] = {AGENCY_TABLE: found[AGENCY_TABLE].condition}

    def condition(name: str, visiting: frozenset = frozenset()) -> str:
        if name in conditions:
            return conditions[name]
        parts = []
        for key in found[name].keys:
            if key.target == AGENCY_TABLE:
                parts.append(f'"{key.column}" = %(agency)s')
            elif key.target not in visiting:
                parts.append(f'"{key.column}" IN (SELECT "{key.target_column}" FROM public."{key.target}" '
                             f'WHERE {condition(key.target, visiting | {name})})')
        conditions[name] = " OR ".join(f"({p})" for p in parts) or "false"
        return conditions[name]

    ordered: list[SharedTable] = []
    done: set[str] = set()

    def visit(name: str, path: frozenset = frozenset()) -> None:
        if name in done or name in path:
            return
        for parent in sorted(found[name].parents):
            visit(parent, path | {name})
        found[name].condition = condition(name)
        ordered.append(found[name])
        done.add(name)

    for name in sorted(found):
        visit(name)
    return ordered


def migration_state(schema: str) -> dict[str, list[str]]:
    """App label → sorted names of the migrations recorded as applied in ``schema``."""
    state: dict[str, list[str]] = {}
    for app, name in _fetch(f'SELECT app, name FROM "{schema}".django_migrations ORDER BY app, name'):
        state.setdefault(app, []).append(name)
    return state

