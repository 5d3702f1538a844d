"""Bring every schema up to date: public first, then the template, then the agencies that need it.

This is the one migration command to run on deploy (docs/operations.md, "Rolling out
migrations"). What makes it cheap at thousands of agencies:

- Which agencies have something to apply is read from their ``django_migrations`` tables in a few
  set-based queries, compared with the template's (just migrated); agencies already at the latest
  state cost no Django migrate run at all.
- The agencies that need it are migrated in ``--processes`` worker processes (default
  ``TENANT_MIGRATION_PROCESSES``), one ``migrate_schemas`` per schema, each schema in its own
  transactions, with a progress line per schema.
- Schemas of the onboarding pool made from the old template are dropped with the new snapshot,
  and the pool refilled at the end (tenants/schemas.py).
- A failing schema does not stop the others: it is reported, retried once at the end, and the
  command exits with an error naming what is still failing. Run it again to resume: schemas
  already migrated are skipped by the first point.
"""
import multiprocessing
import time
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.management import BaseCommand, CommandError, call_command
from django.db import connection, connections
from django.db.migrations.recorder import MigrationRecorder

from tenants import citus
from tenants.models import Agency
from tenants.schemas import TEMPLATE, migrate_template, pool_fill
from tenants.services import platform_ensure

_CHUNK = 250  # schemas per catalogue query


@dataclass
class Outcome:
    schema: str
    seconds: float
    error: str = ""


def applied(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT app || '.' || name FROM {connection.ops.quote_name(schema)}.django_migrations")
        return {row[0] for row in cursor.fetchall()}


def on_disk() -> set[str]:
    """Every migration the code has (a row of one removed since is no reason to migrate again)."""
    from django.db.migrations.loader import MigrationLoader

    return {f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations}


def pending_schemas(schemas: list[str], expected: set[str]) -> list[str]:
    """The schemas missing at least one of ``expected`` (or without a migrations table at all)."""
    if not schemas:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
                       "WHERE c.relname = 'django_migrations' AND n.nspname = ANY(%s)", [schemas])
        with_table = {row[0] for row in cursor.fetchall()}
        behind = [s for s in schemas if s not in with_table]
        candidates = [s for s in schemas if s in with_table]
        wanted = sorted(expected)
        for start in range(0, len(candidates), _CHUNK):
            chunk = candidates[start:start + _CHUNK]
            # The expected names travel once per query, not once per schema.
            counts = " UNION ALL ".join(
                f"SELECT %s, count(*) FROM {connection.ops.quote_name(s)}.django_migrations "
                f"WHERE app || '.' || name IN (SELECT m FROM wanted)" for s in chunk)
            cursor.execute(f"WITH wanted(m) AS (SELECT unnest(%s::text[])) {counts}", [wanted, *chunk])
            behind += [schema for schema, count in cursor.fetchall() if count < len(wanted)]
    order = {s: i for i, s in enumerate(schemas)}
    return sorted(behind, key=order.__getitem__)


@contextmanager
def visible_table_check():
    """Django asks "does django_migrations exist?" by listing every table visible on the search
    path, a scan of the whole catalogue (pg_class) several times per schema: 0.45 s a time at
    1,000 agencies, most of a schema's migrate run. Ask PostgreSQL for that one name instead:
    ``to_regclass`` resolves it on the same search path, so the answer is the same."""
    listed = MigrationRecorder.has_table

    def has_table(recorder):
        if recorder._has_table:
            return True
        with recorder.connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL",
                           [recorder.connection.ops.quote_name(recorder.Migration._meta.db_table)])
            recorder._has_table = cursor.fetchone()[0]
        return recorder._has_table

    MigrationRecorder.has_table = has_table
    try:
        yield
    finally:
        MigrationRecorder.has_table = listed


def _migrate_one(task: tuple[str, int]) -> Outcome:
    schema, verbosity = task
    started = time.monotonic()
    try:
        call_command("migrate_schemas", schema_name=schema, executor="standard", interactive=False,
                     verbosity=verbosity)
        return Outcome(schema, time.monotonic() - started)
    except Exception as exc:  # noqa: BLE001 — reported per schema; the others go on
        return Outcome(schema, time.monotonic() - started, f"{type(exc).__name__}: {exc}")
    finally:
        connection.set_schema_to_public()


class Command(BaseCommand):
    help = "Migrate the public schema, the agency template schema and every agency schema that needs it."

    def add_arguments(self, parser):
        parser.add_argument("--processes", type=int, default=settings.TENANT_MULTIPROCESSING_MAX_PROCESSES,
                            help="Worker processes for the agencies' migrations (1: in this process).")
        parser.add_argument("--retries", type=int, default=1, help="Retries for a schema that failed.")

    def handle(self, *args, **options):
        with visible_table_check():
            self._handle(*args, **options)

    def _handle(self, *args, verbosity=1, processes=1, retries=1, **options):
        started = time.monotonic()
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        platform_ensure()
        migrate_template(verbosity=verbosity)
        connection.set_schema_to_public()
        schemas = list(Agency.objects.agencies().order_by("name").values_list("schema_name", flat=True))
        expected = applied(TEMPLATE) & on_disk()
        pending = pending_schemas(schemas, expected)
        self.stdout.write(f"{len(schemas)} agencies, {len(pending)} with migrations to apply "
                          f"(checked in {time.monotonic() - started:.1f}s)")
        failed = self._migrate(pending, processes, verbosity)
        for attempt in range(retries):
            if not failed:
                break
            self.stdout.write(f"Retrying {len(failed)} failed schema(s) (attempt {attempt + 1})")
            failed = self._migrate([o.schema for o in failed], 1, verbosity)
        self._check_distribution(schemas)
        pool_fill()
        summary = (f"Migrated public, template and {len(pending) - len(failed)} of {len(schemas)} agencies "
                   f"({len(schemas) - len(pending)} already up to date) in {time.monotonic() - started:.1f}s")
        if failed:
            for outcome in failed:
                self.stderr.write(f"FAILED {outcome.schema}: {outcome.error}")
            raise CommandError(f"{summary}; {len(failed)} failed: {', '.join(o.schema for o in failed)}. "
                               "Fix the cause and run migrate_platform again: the others keep their state.")
        self.stdout.write(summary)

    def _migrate(self, schemas: list[str], processes: int, verbosity: int) -> list[Outcome]:
        if not schemas:
            return []
        child_verbosity = max(0, verbosity - 1)
        tasks = [(schema, child_verbosity) for schema in schemas]
        failed = []
        if processes > 1 and len(schemas) > 1:
            connections.close_all()  # each forked child opens its own connection
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(min(processes, len(schemas))) as pool:
                outcomes = pool.imap_unordered(_migrate_one, tasks)
                failed = self._report(outcomes, len(schemas), verbosity)
        else:
            failed = self._report(map(_migrate_one, tasks), len(schemas), verbosity)
        connection.set_schema_to_public()
        return failed

    def _report(self, outcomes, total: int, verbosity: int) -> list[Outcome]:
        failed = []
        for done, outcome in enumerate(outcomes, 1):
            if outcome.error:
                failed.append(outcome)
            if verbosity >= 1 or outcome.error:
                state = f"FAILED: {outcome.error.splitlines()[0][:200]}" if outcome.error else "ok"
                self.stdout.write(f"[{done}/{total}] {outcome.schema}: {state} ({outcome.seconds:.2f}s)")
        return failed

    def _check_distribution(self, schemas: list[str]) -> None:
        """With Citus, every table of every agency must be distributed (tenants/citus.py)."""
        missing = citus.undistributed_tables(schemas)
        if missing:
            lines = [f"{schema}: {', '.join(tables)}" for schema, tables in missing.items()]
            raise CommandError("Agency tables not distributed by Citus:\n" + "\n".join(lines))
