"""What Citus schema-based sharding needs of every agency schema, checked on the real schema so a
migration that breaks a rule fails here (docs/operations.md, "Past one database"), and the Citus
paths of our own code run on plain PostgreSQL wherever they can."""
import re

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.models import ChangeLog
from crm.trips import services as trips
from crm.trips.models import TripSummary
from tenants import citus, schemas

pytestmark = pytest.mark.django_db

# Django's own tables keep Django's integer keys (their apps set AutoField); each is small and
# bounded by the code (content types, permissions, groups), never by an agency's business.
SMALL_DJANGO_TABLES = {"django_content_type", "auth_permission", "auth_group", "auth_group_permissions",
                       "django_migrations",
                       # django-axes' (AutoField) sign-in failures: rows live for the lockout window only and
                       # the access logs are off (docs/accounts-security.md), so 32 bits do not run out.
                       "axes_accessattempt", "axes_accessattemptexpiration", "axes_accesslog", "axes_accessfailurelog",
                       # django-otp's (AutoField) second-factor devices and recovery codes: a few per staff
                       # member, bounded by the staff, never by the agency's business.
                       "otp_static_staticdevice", "otp_static_statictoken", "otp_totp_totpdevice"}


def test_no_foreign_key_leaves_an_agency_schema(alpha):
    """A distributed schema's tables may only reference tables of the same schema."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT src.nspname, c.conrelid::regclass::text, dst.nspname, c.confrelid::regclass::text
            FROM pg_constraint c
            JOIN pg_class s ON s.oid = c.conrelid JOIN pg_namespace src ON src.oid = s.relnamespace
            JOIN pg_class d ON d.oid = c.confrelid JOIN pg_namespace dst ON dst.oid = d.relnamespace
            WHERE c.contype = 'f' AND src.nspname = ANY(%s) AND dst.nspname <> src.nspname""",
                       [[schemas.TEMPLATE, alpha.schema_name]])
        assert cursor.fetchall() == []


def test_agency_keys_are_big_integers(alpha):
    """Integer primary keys of agency tables are bigint: with many agencies on one node, and moves
    between nodes, 32-bit keys are the first thing to run out."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(k.conkey)
            WHERE k.contype = 'p' AND n.nspname = %s AND a.atttypid IN ('int2'::regtype, 'int4'::regtype)""",
                       [alpha.schema_name])
        small = [row for row in cursor.fetchall() if row[0] not in SMALL_DJANGO_TABLES]
    assert small == []


def _tables_of(app_configs) -> set[str]:
    return {model._meta.db_table for config in app_configs for model in config.get_models(include_auto_created=True)}


def test_agency_pages_never_join_an_agency_table_with_a_shared_one(alpha, page_client):
    """Citus runs a query on one node only when it stays within one distributed schema; a join of an
    agency's table with a public table is a cross-node join. Each query of the busiest pages and API
    reads either agency tables or shared tables, never both."""
    tenant = {c.label for c in apps.get_app_configs() if c.name in settings.TENANT_APPS or
              any(c.name.startswith(app + ".") or c.name == app for app in settings.TENANT_APPS)}
    shared_only = _tables_of(c for c in apps.get_app_configs() if c.label not in tenant)
    agency_tables = _tables_of(c for c in apps.get_app_configs() if c.label in tenant)
    shared_only -= agency_tables
    client = page_client("alpha", "admin")
    with tenant_context(alpha):
        customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="周杰")
        trip = trips.trip_create(actor=None, customer=customer, title="Trip", destination="日本 东京", status="confirmed")
    pages = ["/", "/customers/", f"/customers/{customer.pk}/", "/trips/", f"/trips/{trip.pk}/", "/pipeline/",
             "/tasks/", "/value/", "/segments/", "/campaigns/", "/settings/suppliers/", "/settings/billing/"]
    mixed = []
    with CaptureQueriesContext(connection) as queries:
        for path in pages:
            assert client.get(path).status_code == 200, path
    for query in queries.captured_queries:
        named = set(re.findall(r'"([a-z0-9_]+)"', query["sql"]))
        if named & agency_tables and named & shared_only:
            mixed.append((sorted(named & agency_tables)[:3], sorted(named & shared_only), query["sql"][:200]))
    assert len(queries.captured_queries) > 50  # the pages really ran
    assert mixed == []


def test_trigger_function_works_on_a_shard_named_table(alpha):
    """On a Citus node the trigger fires on ``trips_itineraryitem_<shard id>``: the function must
    still know it is the items table and keep the summary of the trips it touched."""
    with tenant_context(alpha):
        customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="林青")
        trip = trips.trip_create(actor=None, customer=customer, title="Trip", destination="上海", status="confirmed")
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE trips_itineraryitem_102042 (LIKE trips_itineraryitem INCLUDING ALL)")
            for op in ("insert", "delete"):
                cursor.execute(f"CREATE TRIGGER trip_summary_{op} AFTER {op.upper()} ON trips_itineraryitem_102042 "
                               f"REFERENCING {'NEW' if op == 'insert' else 'OLD'} TABLE AS "
                               f"{'new_rows' if op == 'insert' else 'old_rows'} "
                               "FOR EACH STATEMENT EXECUTE FUNCTION trip_summary_refresh()")
            cursor.execute("CREATE TABLE trips_trip_102041 (LIKE trips_trip INCLUDING ALL)")
            cursor.execute("CREATE TRIGGER trip_summary_insert AFTER INSERT ON trips_trip_102041 "
                           "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trip_summary_refresh()")
            cursor.execute("INSERT INTO trips_itineraryitem_102042 SELECT * FROM trips_itineraryitem LIMIT 0")
            item = trips.item_add(actor=None, trip=trip, kind="hotel", description="和平饭店", cost="800", sell="1000")
            cursor.execute("UPDATE trips_tripsummary SET sell = 0, items = 0 WHERE trip_id = %s", [trip.pk])
            cursor.execute("INSERT INTO trips_itineraryitem_102042 SELECT * FROM trips_itineraryitem WHERE id = %s",
                           [item.pk])
            assert TripSummary.objects.values_list("items", "sell").get(trip=trip) == (1, 1000)
            # A shard of the trips table is recognised as the trips table (its id column is the trip).
            cursor.execute("DELETE FROM trips_tripsummary WHERE trip_id = %s", [trip.pk])
            cursor.execute("INSERT INTO trips_trip_102041 SELECT * FROM trips_trip WHERE id = %s", [trip.pk])
            assert TripSummary.objects.filter(trip=trip).exists()


def test_distribution_check_reports_agency_tables_citus_does_not_know(alpha, bravo):
    """With Citus (its ``citus_tables`` view; stood in for here by a temporary view), every table of
    every agency must be distributed; on plain PostgreSQL there is nothing to check."""
    assert citus.citus_present() is False
    assert citus.undistributed_tables([alpha.schema_name]) == {}
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP VIEW citus_tables AS SELECT c.oid::regclass AS table_name FROM pg_class c "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r' "
                       "AND c.relname <> 'crm_customer'", [alpha.schema_name])
    try:
        assert citus.citus_present() is True
        missing = citus.undistributed_tables([alpha.schema_name, bravo.schema_name])
        assert missing[alpha.schema_name] == ["crm_customer"]
        assert "crm_customer" in missing[bravo.schema_name] and len(missing[bravo.schema_name]) > 60
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP VIEW pg_temp.citus_tables")
