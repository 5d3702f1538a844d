"""migrate_platform at many agencies: agencies already at the latest state cost no migrate run, a
failing schema is reported and the others keep going, and a second run resumes."""
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tenants.models import Agency

# A leaf migration (no other depends on it: forgetting it leaves a consistent history) whose re-run changes no
# table (model options only). trips 0003 served until the portal's apps came to depend on it (issue 21).
LAST = ("portal", "0003_alter_message_options_alter_signinlink_options")


def test_the_migration_forgotten_here_is_a_leaf():
    from django.db.migrations.loader import MigrationLoader

    assert LAST in MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes()


def _forget_last_migration(schema: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{schema}".django_migrations WHERE app = %s AND name = %s', list(LAST))


def _has_last_migration(schema: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{schema}".django_migrations WHERE app = %s AND name = %s)',
                       list(LAST))
        return cursor.fetchone()[0]


def run(**options) -> str:
    out = io.StringIO()
    call_command("migrate_platform", verbosity=1, stdout=out, stderr=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_agencies_at_the_latest_state_are_not_migrated_again():
    count = Agency.objects.agencies().count()
    output = run(processes=1)
    assert f"{count} agencies, 0 with migrations to apply" in output
    assert "] alpha:" not in output and f"({count} already up to date)" in output


@pytest.mark.django_db
def test_only_the_agency_behind_is_migrated():
    _forget_last_migration("bravo")
    output = run(processes=1)
    assert "1 with migrations to apply" in output and "[1/1] bravo: ok" in output
    assert _has_last_migration("bravo") and _has_last_migration("alpha")


def test_a_failing_schema_is_reported_the_others_migrate_and_a_rerun_resumes(django_db_setup, django_db_blocker):
    """Committed for real (worker processes cannot see a test's transaction), then put back."""
    with django_db_blocker.unblock():
        _forget_last_migration("alpha")
        _forget_last_migration("bravo")
        # An agency whose schema is missing: its migration fails, as a broken schema would.
        Agency.objects.bulk_create([Agency(name="Ghost", slug="ghost", schema_name="ghost", plan="starter")])
        try:
            with pytest.raises(CommandError) as failure:
                run(processes=2, retries=1)
            assert "1 failed: ghost" in str(failure.value)
            assert "Migrated public, template and 2 of" in str(failure.value)
            assert _has_last_migration("alpha") and _has_last_migration("bravo")
            Agency.objects.filter(slug="ghost").delete()
            output = run(processes=2)
            assert "0 with migrations to apply" in output
        finally:
            Agency.objects.filter(slug="ghost").delete()
            connection.set_schema_to_public()
            with connection.cursor() as cursor:
                cursor.execute("DROP SCHEMA IF EXISTS ghost CASCADE")
            for schema in ("alpha", "bravo"):
                if not _has_last_migration(schema):
                    run(processes=1)
