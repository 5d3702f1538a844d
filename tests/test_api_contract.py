"""The API keeps its own contract (issue 18): what both OpenAPI schemas promise is what the API answers.

``test_agency_api`` and ``test_operator_api`` are schemathesis over **every operation** of the agency
schema (``/api/schema/`` on an agency host, from ``caravan.urls_tenant_api``) and of the operator
schema (``caravan.urls_public_api``), through the real Django WSGI application and the real test
database: an agency admin's token on an agency host, the operator's token on the platform domain.

What it samples, per operation: the schema's own examples, then ``MAX_EXAMPLES`` generated requests
(hypothesis, valid and invalid data: bodies, query strings, path parameters; ids are sometimes
swapped for the ids of records that exist, so detail operations answer 200 too, not only 404).
No shrinking, no coverage or stateful phase: the whole run stays within a few minutes on two cores.
Checks: no 5xx, the status code is declared, the content type is declared, the body matches the
declared schema. Each operation runs in its own rolled-back transaction, on an agency of its own
(``contract``, made for this module and deleted after it), so generated data harms no other test.

The rest: lists that advertise ``search`` honour it (Chinese too), lists documented as arrays answer
arrays, and the schema has no two serializers sharing a component name.
"""
import json
import time
from functools import cache

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, connection
from django_tenants.utils import schema_context, tenant_context
from drf_spectacular.generators import SchemaGenerator
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from accounts.models import User

from .conftest import OPERATOR

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

MAX_EXAMPLES = 6
SLUG = "contract"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = schemathesis.config.SchemathesisConfig.from_dict({
    "seed": 18,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "no-shrink": True, "database": "none"},
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
})


def raw_schema(urlconf: str) -> dict:
    """What ``/api/schema/`` serves for ``urlconf`` (the view runs the same generator), as JSON."""
    return json.loads(json.dumps(SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True), default=str))


@cache
def _wsgi():
    from caravan.wsgi import application

    return application


def application(environ, start_response):
    """caravan.wsgi's application, loaded when the first request is made (not at collection). As
    Django's test client does, requests leave the test's connection open (and its transaction)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        return _wsgi()(environ, start_response)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


AGENCY_SCHEMA = schemathesis.openapi.from_dict(raw_schema("caravan.urls_tenant_api"), config=CONFIG)
OPERATOR_SCHEMA = schemathesis.openapi.from_dict(raw_schema("caravan.urls_public_api"), config=CONFIG)
for _schema in (AGENCY_SCHEMA, OPERATOR_SCHEMA):
    _schema.app = application  # in-process WSGI: the real middleware, views and database


def _with_known_ids(context, path_parameters):
    """Two times in three, a numeric id becomes 1 or 2: ``contract_agency`` made records with those ids."""
    numeric = [key for key, value in (path_parameters or {}).items() if str(value).isdigit()]
    if not numeric:
        return st.just(path_parameters)
    return st.sampled_from([1, 2, None]).map(
        lambda known: path_parameters if known is None else {**path_parameters, **{key: str(known) for key in numeric}})


AGENCY_SCHEMA.hook("flatmap_path_parameters")(_with_known_ids)

CALLS: dict[str, list[int]] = {}  # "agency GET /api/v1/trips/{id}/" → the statuses it answered
CLOCK: list[float] = []  # when the first and the last call were answered


def _recorder(name):
    def after_call(context, case, response):
        CALLS.setdefault(f"{name} {case.operation.label}", []).append(response.status_code)
        now = time.monotonic()
        CLOCK[:] = [CLOCK[0] if CLOCK else now, now]

    return after_call


AGENCY_SCHEMA.hook("after_call")(_recorder("agency"))
OPERATOR_SCHEMA.hook("after_call")(_recorder("operator"))


# --- the agency the run plays in ---------------------------------------------------------------------

def _seed(admin, agency):
    """One or two of most kinds of record (ids 1 and 2 in a fresh schema), for detail operations to find."""
    from datetime import date, timedelta

    from django.utils import timezone

    from crm.care import services as care
    from crm.pipeline import services as pipeline
    from crm.trips import services as trips

    from .policy_factories import setup_account
    from .test_campaigns import campaign
    from .test_trips_services import opportunity, person, trip_with_items
    from .tier_factories import ladder

    first, second = person(), person()
    for customer in (first, second):
        opp = opportunity(customer, code="won")
        trip = trip_with_items(None, sell="5000.00", opportunity=opp, customer=customer)
        trips.item_add(actor=None, trip=trip, kind="visa", description="Visa", sell="0")
        trips.payment_record(actor=None, trip=trip, kind="deposit", amount="1000.00", method="bank",
                             received_on=date(2031, 1, 1))
        care.complaint_log(actor=admin, customer=customer, category="service", severity="low",
                           description="The transfer was late.", trip=trip)
        pipeline.task_create(actor=admin, title="Call back", owner=admin, due_at=timezone.now() + timedelta(days=1),
                             customer=customer)
    ladder()
    campaign(name="Spring"), campaign(name="Autumn")
    setup_account(agency)
    from crm.destinations import services as knowledge

    for city, title in (("Tokyo", "东京"), ("Osaka", "大阪")):
        article = knowledge.article_save(actor=admin, article=None, data={"country": "JP", "city": city, "title_zh": title})
        knowledge.visa_note_save(actor=admin, article=article, nationality="CN", data={"requirement": "visa"})


@pytest.fixture(scope="module")
def contract_agency(django_db_setup, django_db_blocker):
    """An agency of the run's own, committed, with an admin's token; deleted afterwards."""
    from tenants.services import agency_delete, agency_onboard

    with django_db_blocker.unblock():
        agency = agency_onboard(name="Contract 合同", slug=SLUG, plan="professional", admin_email="first@contract.test",
                                admin_name="First Admin", language="en").agency
        with tenant_context(agency):
            admin = User.objects.create_user("admin@contract.test", "pw-contract-admin-Caravan!", role="admin",
                                             full_name="Admin of contract", language="en")
            token = _token(admin)
            _seed(admin, agency)
        connection.set_schema_to_public()
        try:
            yield token
        finally:
            connection.set_schema_to_public()
            agency.refresh_from_db()
            agency_delete(agency=agency, confirm_slug=SLUG, actor="tests")


def _token(user) -> str:
    """A token with every scope the user may have: the role alone decides, as for a full-access token."""
    from accounts.scopes import all_scopes, operator_scopes
    from accounts.tokens import token_create

    scopes = operator_scopes() if user.is_operator else all_scopes()
    return token_create(user=user, name="contract", scopes=scopes)[1]


@pytest.fixture
def operator_token(db):
    with schema_context("public"):
        return _token(User.objects.get(email=OPERATOR))


SETTINGS = hypothesis.settings(deadline=None, max_examples=MAX_EXAMPLES, derandomize=True, database=None,
                               suppress_health_check=list(hypothesis.HealthCheck))


@AGENCY_SCHEMA.parametrize()
@SETTINGS
def test_agency_api(case, contract_agency):
    case.call_and_validate(headers={"Host": f"{SLUG}.localhost", "Authorization": f"Token {contract_agency}",
                                    "Accept-Language": "en"}, checks=CHECKS)


@OPERATOR_SCHEMA.parametrize()
@SETTINGS
def test_operator_api(case, operator_token):
    case.call_and_validate(headers={"Host": "localhost", "Authorization": f"Token {operator_token}",
                                    "Accept-Language": "en"}, checks=CHECKS)


def test_the_run_reached_every_operation_and_got_past_the_fence():
    """After the two runs above: every operation was called, and most reads answered 2xx (the token
    works, ids of real records are used), so the checks saw real bodies, not only error bodies
    (three in four at least: the reads of kinds ``_seed`` makes none of answer 404)."""
    if not CALLS:
        pytest.skip("run with test_agency_api and test_operator_api")
    operations = {f"{name} {op.label}" for name, schema in (("agency", AGENCY_SCHEMA), ("operator", OPERATOR_SCHEMA))
                  for op in (result.ok() for result in schema.get_all_operations())}
    assert operations <= set(CALLS), sorted(operations - set(CALLS))[:10]
    reads = [label for label in operations if " GET " in label]
    answered = [label for label in reads if any(200 <= status < 300 for status in CALLS[label])]
    requests = sum(len(statuses) for statuses in CALLS.values())
    print(f"\n{len(operations)} operations, {requests} requests ({requests / len(operations):.1f} per operation) in "
          f"{CLOCK[-1] - CLOCK[0]:.0f} s; {len(answered)} of {len(reads)} reads answered 2xx")
    assert len(answered) >= 0.75 * len(reads), sorted(set(reads) - set(answered))


# --- search, arrays and component names ------------------------------------------------------------

def _operations(schema: dict, method: str = "get"):
    for path, item in schema["paths"].items():
        if method in item:
            yield path, item[method]


def test_every_list_that_advertises_search_honours_it(api_client, operator_client, alpha):
    """A text nothing matches empties every list that offers ``search`` (it answered every record);
    lists that do not honour it do not offer it (caravan.api.filters)."""
    from .policy_factories import person

    from crm.destinations import services as knowledge

    with tenant_context(alpha):
        person("王芳 Wang Fang")
        knowledge.article_save(actor=None, article=None, data={"country": "JP", "city": "Tokyo", "title_zh": "东京"})
    checked = []
    for name, urlconf, client in (("agency", "caravan.urls_tenant_api", api_client("alpha", "admin")),
                                  ("operator", "caravan.urls_public_api", operator_client)):
        for path, operation in _operations(raw_schema(urlconf)):
            if not any(p["name"] == "search" for p in operation.get("parameters", [])):
                continue
            assert "{" not in path, f"{path}: search on a nested list"
            everything = client.get(path)
            assert everything.status_code == 200 and everything.json()["count"] > 0, path
            nothing = client.get(path, {"search": "zzzz-matches-nothing"})
            assert nothing.status_code == 200 and nothing.json()["count"] == 0, (path, nothing.json()["count"])
            checked.append(path)
    assert {"/api/v1/customers/", "/api/v1/staff/", "/api/operator/agencies/"} <= set(checked)


def test_searching_customers_and_staff_in_chinese(api_client, alpha):
    """``search`` on customers is the page's search box (name, phone in any format); staff by name."""
    from .policy_factories import person

    with tenant_context(alpha):
        wang, li = person("王芳 Wang Fang"), person("李雷 Li Lei")
        User.objects.create_user("lina@alpha.test", "pw-lina-Caravan!", role="sales", full_name="李娜", language="zh-hans")
    client = api_client("alpha", "admin")

    def names(path, term):
        response = client.get(path, {"search": term})
        assert response.status_code == 200, response.content
        return [row.get("name") or row.get("full_name") for row in response.json()["results"]]

    assert names("/api/v1/customers/", "王芳") == [wang.name]
    assert names("/api/v1/customers/", "Li Lei") == [li.name]
    assert names("/api/v1/customers/", "zzzz") == []
    assert names("/api/v1/staff/", "李娜") == ["李娜"]
    # and not on another agency's host
    assert api_client("bravo", "admin").get("/api/v1/customers/", {"search": "王芳"}).json()["count"] == 0


ARRAYS = ["/api/v1/customers/similar/", "/api/v1/trips/{id}/items/", "/api/v1/trips/{id}/travelers/",
          "/api/v1/trips/{id}/payments/", "/api/v1/trips/{id}/checklist/", "/api/v1/travel-policies/{id}/versions/",
          "/api/v1/campaign-templates/{id}/preview/", "/api/v1/care/referrals/top/"]


def test_the_lists_that_answer_arrays_are_documented_as_arrays(api_client, alpha):
    """The eight operations a probe found documented as pages but answering bare arrays."""
    from .policy_factories import setup_account
    from .test_campaigns import template
    from .test_trips_api import visa_trip

    schema = raw_schema("caravan.urls_tenant_api")
    for path in ARRAYS:
        documented = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert documented["type"] == "array", (path, documented)
    with tenant_context(alpha):
        ids = visa_trip(alpha)
        _account, _boss, _traveler, version = setup_account(alpha)
        tmpl = template()
    client = api_client("alpha", "admin")
    for path, pk in zip(ARRAYS, [None, ids["trip"], ids["trip"], ids["trip"], ids["trip"], version.policy_id, tmpl.pk,
                                 None]):
        response = client.get(path.format(id=pk), {"name": "王"} if "similar" in path else {})
        assert response.status_code == 200, (path, response.content)
        assert isinstance(response.json(), list), path
    assert client.get("/api/v1/customers/", {"page_size": 1}).json().keys() >= {"count", "results"}


def test_no_two_serializers_share_a_component_name():
    """Two serializers under one name make one of them describe the other's answers."""
    from drf_spectacular.drainage import GENERATOR_STATS

    for urlconf in ("caravan.urls_tenant_api", "caravan.urls_public_api"):
        GENERATOR_STATS.reset()
        raw_schema(urlconf)
        clashes = [message for message in GENERATOR_STATS._warn_cache if "identical names" in message]
        assert clashes == [], clashes
