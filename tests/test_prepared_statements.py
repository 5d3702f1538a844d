"""Statements prepared once per connection (caravan.db.prepared): one connection serving agency after
agency never answers one agency from another's tables, even once PostgreSQL has settled on a generic plan."""
import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from caravan.db.base import DatabaseWrapper as PooledWrapper
from caravan.db.prepared import execute_prepared, execute_prepared_all
from caravan.db.session.base import DatabaseWrapper as SessionWrapper
from crm.customers import selectors
from crm.customers import services as crm_services
from crm.customers.models import ChangeLog
from crm.privacy.models import AccessEntry

pytestmark = pytest.mark.django_db
NUMBER = "13800138055"


def _generic_plans(sql_start: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(generic_plans), 0) FROM pg_prepared_statements WHERE statement LIKE %s",
                       [f"%{sql_start}%"])
        return cursor.fetchone()[0]


def test_one_connection_alternating_agencies_answers_each_from_its_own_tables(alpha, bravo):
    mine = {}
    for agency, name in ((alpha, "阿尔法 客户"), (bravo, "布拉沃 客户")):
        with tenant_context(agency):
            mine[agency.slug] = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name,
                                                             phones=[NUMBER]).pk
    backend = connection.connection
    with tenant_context(alpha):  # long enough on one agency for PostgreSQL to keep a generic plan
        for _ in range(8):
            assert selectors.screen_pop(number=NUMBER)["customer"].pk == mine["alpha"]
    assert _generic_plans("WITH RECURSIVE chain") > 0
    for round_ in range(6):
        for agency in (bravo, alpha) if round_ % 2 == 0 else (alpha, bravo):
            with tenant_context(agency):
                pop = selectors.screen_pop(number=NUMBER)
                assert pop["customer"].pk == mine[agency.slug], (round_, agency.slug)
    assert connection.connection is backend  # the same PostgreSQL session throughout
    connection.set_schema_to_public()


def test_the_api_alternating_agencies_on_one_connection(alpha, bravo, api_client):
    """Token, screen pop and access entry (all three prepared) through the API, alpha and bravo in turn."""
    clients, mine = {}, {}
    for agency in (alpha, bravo):
        with tenant_context(agency):
            mine[agency.slug] = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE,
                                                             name=f"{agency.slug} caller", phones=[NUMBER]).pk
        connection.set_schema_to_public()
        clients[agency.slug] = api_client(agency.slug, "call_center")
    for _ in range(7):
        for slug in ("alpha", "bravo"):
            answer = clients[slug].get("/api/v1/screen-pop/", {"phone": NUMBER})
            assert answer.status_code == 200 and answer.json()["customer"]["id"] == mine[slug]
    for agency in (alpha, bravo):
        with tenant_context(agency):
            assert set(AccessEntry.objects.values_list("customer_id", flat=True)) == {mine[agency.slug]}
            assert AccessEntry.objects.count() == 7
    connection.set_schema_to_public()
    # A token is looked up in the host's agency only: alpha's token on bravo's host is refused.
    stranger = api_client("alpha", "call_center", on="bravo.localhost")
    assert stranger.get("/api/v1/screen-pop/", {"phone": NUMBER}).status_code == 401


def test_a_failed_first_message_leaves_the_statement_usable(alpha):
    sql = "SELECT %s::int + 1, '100%%'"
    with tenant_context(alpha), pytest.raises(DataError), transaction.atomic(), connection.cursor() as cursor:
        execute_prepared(cursor, sql, ["not a number"])  # PREPARE done, EXECUTE refused, in one message
    with tenant_context(alpha), connection.cursor() as cursor:
        for value in (1, 2):
            execute_prepared(cursor, sql, [value])
            assert cursor.fetchone() == (value + 1, "100%")
    connection.set_schema_to_public()


def test_only_the_session_engine_prepares():
    """Behind PgBouncer in transaction mode a prepared statement would be missing on the next server connection."""
    assert SessionWrapper.prepares_statements is True
    assert getattr(PooledWrapper, "prepares_statements", False) is False


def test_several_statements_in_one_message_each_prepared_once(alpha, bravo):
    """execute_prepared_all: the first message PREPAREs what it has not seen, later ones only EXECUTE; a
    failed first message leaves fresh names behind, and each agency reads its own tables."""
    first, second = "SELECT %s::int + 1, '100%%', 'all'", "SELECT count(*) FROM crm_customer WHERE name = %s"
    with tenant_context(alpha):
        crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="甲", phones=[NUMBER])
    with tenant_context(alpha), pytest.raises(DataError), transaction.atomic(), connection.cursor() as cursor:
        execute_prepared_all(cursor, [(first, ["not a number"]), (second, ["甲"])])
    for round_ in range(3):
        for agency, count in ((alpha, 1), (bravo, 0)):
            with tenant_context(agency), CaptureQueriesContext(connection) as ctx, connection.cursor() as cursor:
                execute_prepared_all(cursor, [(first, [round_]), (second, ["甲"])])
                assert cursor.fetchone() == (round_ + 1, "100%", "all")
                assert cursor.nextset() and cursor.fetchone() == (count,)
            sent = ctx.captured_queries[-1]["sql"]
            assert sent.count("PREPARE ") == (2 if (round_, agency) == (0, alpha) else 0), sent
    connection.set_schema_to_public()
