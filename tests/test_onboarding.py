"""Onboarding (R-PLAT-2): one step, fast, and all-or-nothing."""
import os
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context, schema_exists, tenant_context

from accounts.models import User
from accounts.roles import Role
from tenants import schemas, services
from tenants.models import Agency, AgencyEvent, Domain

pytestmark = pytest.mark.django_db


def onboard(**overrides):
    data = dict(name="Delta Holidays 德尔塔假期", slug="delta", plan="starter", admin_email="Boss@Delta.test", admin_name="老板")
    data.update(overrides)
    return services.agency_onboard(**data)


def test_onboarding_creates_schema_domain_and_invited_admin():
    result = onboard()
    agency = result.agency
    assert agency.status == Agency.Status.TRIAL and agency.trial_ends_at is not None
    assert schema_exists("delta")
    assert Domain.objects.get(tenant=agency).domain == "delta.localhost"
    with tenant_context(agency):
        admin = User.objects.get()
        assert (admin.email, admin.role, admin.full_name) == ("boss@delta.test", Role.ADMIN, "老板")
        assert admin.invitation_pending  # no password until the invitation is accepted
    assert result.invitation_url.startswith("http://delta.localhost:8000/accounts/invitation/")
    assert AgencyEvent.objects.unscoped().filter(agency=agency, kind="onboarded").exists()


def shape(schema):
    """Everything a schema is made of: columns, constraints, indexes, triggers, functions, sequence
    positions and migration rows, with the schema's own name taken out."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity "
                       "FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2", [schema])
        columns = cursor.fetchall()
        cursor.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
                       "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %s ORDER BY 1, 2", [schema])
        constraints = cursor.fetchall()
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1", [schema])
        indexes = cursor.fetchall()
        cursor.execute("SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND NOT t.tgisinternal "
                       "ORDER BY 1, 2", [schema])
        triggers = cursor.fetchall()
        cursor.execute("SELECT p.proname, md5(p.prosrc) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                       "WHERE n.nspname = %s ORDER BY 1", [schema])
        functions = cursor.fetchall()
        cursor.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %s ORDER BY 1", [schema])
        sequences = cursor.fetchall()
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations ORDER BY 1, 2')
        migrations = cursor.fetchall()
    found = repr((columns, constraints, indexes, triggers, functions, sequences, migrations))
    # pg_dump writes an IN list back as ARRAY[…]::text[] where the migration wrote casts per element:
    # the same predicate, spelt two ways; compare without casts, brackets and parentheses.
    found = re.sub(r"::(text|character varying)(\[\])?|ARRAY|[\[\]()]", "", found)
    return found.replace(f'"{schema}".', "").replace(f"{schema}.", "")


def test_snapshot_schema_is_exactly_a_migrated_one():
    """The snapshot (pg_dump of the template, replayed) builds what replaying every migration builds."""
    agency = onboard(slug="snapped").agency
    assert agency.schema_method == "snapshot"
    connection.set_schema_to_public()
    schemas.migrate_new_schema("replayed")
    with connection.cursor() as cursor:
        cursor.execute('SELECT count(*) FROM "snapped".django_content_type')
        snapped_types = cursor.fetchone()[0]
        cursor.execute('SELECT count(*) FROM "replayed".django_content_type')
        assert snapped_types == cursor.fetchone()[0] > 0
        # The replayed schema's rows are written by migrate; the users/invitations of onboarding are not.
        cursor.execute('TRUNCATE "snapped".accounts_user CASCADE')
    snapped, replayed = shape("snapped"), shape("replayed")
    assert "trip_summary_refresh" in snapped and "trip_summary_insert" in snapped
    # Sequence positions differ only where onboarding wrote rows (the first admin).
    assert snapped.replace("'accounts_user_id_seq', 1,", "'accounts_user_id_seq', None,") == replayed


def test_snapshot_replays_under_any_schema_name():
    script = schemas.current_snapshot()
    assert script and schemas.TEMPLATE not in script and "\\restrict" not in script
    schemas.replay_snapshot(script, "b2b_travel")
    assert shape("b2b_travel") == shape(schemas.TEMPLATE)


def test_stale_snapshot_is_not_used():
    """A template migrated after the snapshot was taken (no pg_dump that time) falls back to clone_schema()."""
    with connection.cursor() as cursor:
        cursor.execute(f'INSERT INTO "{schemas.TEMPLATE}".django_migrations (app, name, applied) '
                       "VALUES ('trips', '9999_later', now())")
    assert schemas.current_snapshot() is None
    assert onboard(slug="later").agency.schema_method == "clone"
    _template_sequence_back()


def _template_sequence_back():
    """Sequences ignore rollbacks: put the template's django_migrations id back where it was."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('\"{schemas.TEMPLATE}\".django_migrations', 'id'), "
                       f"(SELECT max(id) FROM \"{schemas.TEMPLATE}\".django_migrations WHERE name <> '9999_later'))")


def test_snapshot_drops_psql_commands_and_session_settings():
    dump = (f"\\restrict abc\nSET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n"
            f"CREATE SCHEMA {schemas.TEMPLATE};\nCREATE TABLE {schemas.TEMPLATE}.t (id bigint);\n"
            f"SELECT pg_catalog.setval('{schemas.TEMPLATE}.t_id_seq', 1, false);\n\\unrestrict abc\n")
    script = schemas.script_from_dump(dump)
    assert "restrict" not in script and "statement_timeout" not in script and "set_config" not in script
    assert script.count("@@caravan_schema@@") == 3
    with pytest.raises(RuntimeError):
        schemas.script_from_dump(f"CREATE TABLE x (note text DEFAULT '{schemas.TEMPLATE}');")


def test_pool_schema_is_renamed_into_the_new_agency_and_is_exactly_a_migrated_one():
    assert schemas.pool_fill(2) == 2
    ready = schemas.pool_ready()
    agency = onboard(slug="pooled").agency
    assert agency.schema_method == "pool"
    assert schemas.pool_ready() == ready[1:] and not schema_exists(ready[0])
    with connection.cursor() as cursor:
        cursor.execute('TRUNCATE "pooled".accounts_user CASCADE')
    pooled = shape("pooled").replace("'accounts_user_id_seq', 1,", "'accounts_user_id_seq', None,")
    assert pooled == shape(schemas.TEMPLATE)
    with tenant_context(agency):  # the renamed schema's own trigger function keeps its own summary
        from crm.customers import services as crm_services
        from crm.customers.models import ChangeLog
        from crm.trips import services as trips
        from crm.trips.models import TripSummary

        customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="池中客")
        trip = trips.trip_create(actor=None, customer=customer, title="Trip", destination="杭州", status="confirmed")
        trips.item_add(actor=None, trip=trip, kind="hotel", description="西湖", cost="500", sell="700")
        assert TripSummary.objects.values_list("items", "sell").get(trip=trip) == (1, 700)


def test_a_failed_onboarding_gives_its_pool_schema_back(monkeypatch):
    import accounts.services

    schemas.pool_fill(1)
    ready = schemas.pool_ready()

    def explode(**kwargs):
        raise RuntimeError("mail system down")

    monkeypatch.setattr(accounts.services, "staff_invite", explode)
    with pytest.raises(RuntimeError):
        onboard(slug="broken")
    connection.set_schema_to_public()
    assert schemas.pool_ready() == ready and schema_exists(ready[0]) and not schema_exists("broken")


def test_pool_schemas_of_an_older_template_are_dropped_not_used():
    schemas.pool_fill(1)
    [old] = schemas.pool_ready()
    with connection.cursor() as cursor:
        cursor.execute(f'INSERT INTO "{schemas.TEMPLATE}".django_migrations (app, name, applied) '
                       "VALUES ('trips', '9999_later', now())")
    assert schemas.pool_ready() == [] and schemas.pool_claim("nobody") is False
    assert schemas.pool_discard_stale() == 1 and not schema_exists(old)
    _template_sequence_back()


def test_template_never_holds_users_or_sessions():
    with connection.cursor() as cursor:
        for table in ("accounts_user", "django_session", "authtoken_token", "accounts_apitoken", "axes_accessattempt"):
            cursor.execute(f'SELECT count(*) FROM "{schemas.TEMPLATE}"."{table}"')
            assert cursor.fetchone()[0] == 0, table


@pytest.mark.parametrize("slug, message", [
    ("alpha", "already exists"),
    ("www", "reserved"),
    ("api", "reserved"),
    ("static", "reserved"),
    ("Bad_Slug", "lowercase"),
    ("-lead", "lowercase"),
    ("a", "lowercase"),
    ("x" * 31, "lowercase"),
])
def test_bad_slugs_are_refused_with_a_clear_message(slug, message):
    with pytest.raises(ValidationError) as exc:
        onboard(slug=slug)
    assert message in " ".join(exc.value.message_dict["slug"])
    assert Agency.objects.filter(name="Delta Holidays 德尔塔假期").count() == 0


def test_missing_fields_are_reported_per_field():
    with pytest.raises(ValidationError) as exc:
        onboard(name="", plan="gold", admin_email="not-an-email")
    assert set(exc.value.message_dict) == {"name", "plan", "admin_email"}


def test_failure_midway_leaves_no_agency_domain_schema_or_user(monkeypatch):
    import accounts.services

    def explode(**kwargs):
        User.objects.create_user("half@made.test", role=Role.ADMIN, full_name="Half")
        raise RuntimeError("mail system down")

    monkeypatch.setattr(accounts.services, "staff_invite", explode)
    with pytest.raises(RuntimeError):
        onboard(slug="broken")
    connection.set_schema_to_public()
    assert not Agency.objects.filter(slug="broken").exists()
    assert not Domain.objects.filter(domain__startswith="broken.").exists()
    assert not schema_exists("broken")
    assert not AgencyEvent.objects.unscoped().filter(note__contains="Boss@Delta").exists()


def test_operator_api_onboards_and_reports_field_errors(operator_client):
    response = operator_client.post("/api/operator/agencies/", {
        "name": "Echo Travel", "slug": "echo", "plan": "enterprise", "admin_email": "head@echo.test"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["agency"]["domain"] == "echo.localhost"
    assert "/accounts/invitation/" in response.json()["invitation_url"]

    response = operator_client.post("/api/operator/agencies/", {
        "name": "Echo again", "slug": "echo", "plan": "enterprise", "admin_email": "x"}, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "already exists" in fields["slug"][0] and "admin_email" in fields


def test_console_page_onboards_and_shows_the_invitation(operator_client):
    response = operator_client.post("/agencies/new/", {
        "name": "Foxtrot 狐步旅行", "slug": "foxtrot", "plan": "starter", "admin_email": "a@foxtrot.test",
        "admin_name": "", "language": "zh-hans"})
    assert response.status_code == 200
    assert b"foxtrot.localhost" in response.content and b"/accounts/invitation/" in response.content
    response = operator_client.post("/agencies/new/", {
        "name": "Reserved", "slug": "admin", "plan": "starter", "admin_email": "a@x.test", "language": "en"})
    assert response.status_code == 400 and "reserved".encode() in response.content.lower()


def test_manage_py_onboard_agency(capsys):
    call_command("onboard_agency", "--name", "Golf Travel", "--slug", "golf", "--admin-email", "g@golf.test")
    out = capsys.readouterr().out
    assert "http://golf.localhost:8000/" in out and "/accounts/invitation/" in out
    with pytest.raises(CommandError, match="reserved"):
        call_command("onboard_agency", "--name", "W", "--slug", "www", "--admin-email", "g@golf.test")


def test_delete_needs_the_slug_typed_and_drops_the_schema(operator_client):
    onboard(slug="hotel")
    response = operator_client.delete("/api/operator/agencies/hotel/", {"confirm_slug": "hote"}, format="json")
    assert response.status_code == 400 and "confirm_slug" in response.json()["error"]["fields"]
    assert schema_exists("hotel")
    response = operator_client.delete("/api/operator/agencies/hotel/", {"confirm_slug": "hotel"}, format="json")
    assert response.status_code == 204
    assert not schema_exists("hotel") and not Agency.objects.filter(slug="hotel").exists()


def test_operator_lists_agencies_without_the_platform_row(operator_client):
    response = operator_client.get("/api/operator/agencies/?ordering=name")
    slugs = [a["slug"] for a in response.json()["results"]]
    assert slugs == ["alpha", "bravo", "charlie"]
    with schema_context("public"):
        assert Agency.objects.filter(schema_name="public").exists()


def test_delete_forgets_the_agencys_files_and_cache(settings, tmp_path):
    from django.core.cache import cache
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    settings.MEDIA_ROOT = tmp_path
    settings.MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"  # django-tenants' storage re-reads MEDIA_ROOT only then
    agency = onboard(slug="india").agency
    with tenant_context(agency):
        default_storage.save("scan.pdf", ContentFile(b"old"))
        cache.set("k", "old agency's value")
        folder = default_storage.path("")
    services.agency_delete(agency=agency, confirm_slug="india", actor="test")
    assert folder.endswith("/india") and not os.path.exists(folder)
    reborn = onboard(slug="india").agency
    with tenant_context(reborn):
        assert cache.get("k") is None and not default_storage.exists("scan.pdf")
