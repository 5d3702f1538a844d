"""The cost of a request (issue 22, bench/request_cost.py): what a web process imports at start-up,
the statements and lookups of one API request, and that the faster paths answer what the old ones did."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from accounts import tokens
from accounts.models import ApiToken, User
from accounts.scopes import all_scopes
from billing import throttling
from crm.customers import services as crm_services
from crm.customers.models import ChangeLog
from crm.privacy.models import AccessEntry

from .conftest import staff

ROOT = Path(__file__).resolve().parent.parent
# Libraries only some requests or tasks need, tens of MB each in every web worker that imports them.
HEAVY = ("stripe", "numpy", "scipy", "pypinyin", "holidays", "aiohttp")


def test_a_web_process_starts_without_the_heavy_libraries():
    """caravan.wsgi loads both URL maps (every view module); none of them may import these at the top."""
    script = ("import json, sys; import caravan.wsgi; "
              f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=os.environ.copy(), capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_the_url_maps_are_loaded_with_the_application():
    script = ("import sys; import caravan.wsgi; "
              "print('crm.customers.api' in sys.modules and 'console.views.agencies' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=os.environ.copy(), capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert out.strip().splitlines()[-1] == "True"


@pytest.mark.django_db
def test_a_screen_pop_is_the_token_the_caller_and_the_access_entry(alpha, api_client):
    with tenant_context(alpha):
        customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="王芳", phones=["13800138077"])
    connection.set_schema_to_public()
    client = api_client("alpha", "admin")
    assert client.get("/api/v1/screen-pop/", {"phone": "13800138077"}).status_code == 200  # the plan's limit read
    with CaptureQueriesContext(connection) as queries:
        answer = client.get("/api/v1/screen-pop/", {"phone": "138 0013 8077"})
    assert answer.status_code == 200 and answer.json()["customer"]["id"] == customer.pk
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET search_path")]
    assert len(statements) == 3, statements
    assert "accounts_apitoken" in statements[0] and "WITH RECURSIVE" in statements[1]
    assert 'INSERT INTO "privacy_accessentry"' in statements[2]  # each an EXECUTE with its text (caravan.db.prepared)
    with tenant_context(alpha):
        assert AccessEntry.objects.filter(customer_id=customer.pk, via="api").count() == 2


@pytest.mark.django_db
def test_the_token_lookup_reads_what_the_orm_reads(alpha, bravo):
    with tenant_context(alpha):
        token, secret = tokens.token_create(user=staff(alpha, "sales"), name="lookup", scopes=all_scopes())
        key_hash = tokens._hash(secret)
        found = tokens._token_and_user(key_hash)
        orm = ApiToken.objects.select_related("user").get(key_hash=key_hash)
        for model, ours, theirs in ((ApiToken, found, orm), (User, found.user, orm.user)):
            for field in model._meta.concrete_fields:
                assert getattr(ours, field.attname) == getattr(theirs, field.attname), field.name
        assert found.user_id == found.user.pk and not found._state.adding and found._state.db == "default"
        assert tokens._token_and_user(tokens._hash("cvn_no-such-token")) is None
        assert tokens.token_authenticate(secret).pk == token.pk
    with tenant_context(bravo):  # another agency's token means nothing here
        assert tokens._token_and_user(key_hash) is None and tokens.token_authenticate(secret) is None


def test_the_token_lookup_needs_no_database_converters():
    """``_token_and_user`` builds the models from the row as the driver returns it: a field with a
    converter (a JSONField, an encrypted field) would need it applied there first."""
    for model in (ApiToken, User):
        for field in model._meta.concrete_fields:
            assert not field.get_db_converters(connection) + connection.ops.get_db_converters(field), field


@pytest.mark.django_db
def test_each_agencys_plan_limit_is_read_once_a_window(alpha, bravo, monkeypatch):
    from decimal import Decimal

    from billing.models import Plan

    plan = Plan.objects.create(code=alpha.plan, name="Tiny", seat_price_month=Decimal("9"),
                               seat_price_year=Decimal("90"), api_requests_per_minute=3)
    throttling.forget_rate_limits()
    with CaptureQueriesContext(connection) as queries:
        assert throttling.agency_rate_limit(alpha) == 3 and throttling.agency_rate_limit(alpha) == 3
    assert len(queries) == 1
    Plan.objects.filter(pk=plan.pk).update(api_requests_per_minute=5)
    # Within the window alpha keeps what it read; bravo (same plan) has an entry of its own, read now.
    assert throttling.agency_rate_limit(alpha) == 3 and throttling.agency_rate_limit(bravo) == 5
    later = throttling.time.monotonic() + throttling.WINDOW
    monkeypatch.setattr(throttling.time, "monotonic", lambda: later)
    assert throttling.agency_rate_limit(alpha) == 5  # a window later: read again


@pytest.mark.django_db
def test_a_rate_hit_counts_per_agency_in_a_window_that_expires(alpha, bravo):
    import time

    from django.core.cache import cache

    from caravan.clients import rate_hit

    start = int(time.time()) // 3600 * 3600  # an hour's window: the test never straddles two
    with tenant_context(alpha):
        waits = [rate_hit("request-cost-test", limit=2, window=3600) for _ in range(3)]
        assert waits[:2] == [0, 0] and 1 <= waits[2] <= 3600
        assert cache.get(f"rate:request-cost-test:{start}") == 3 and 0 < cache.ttl(f"rate:request-cost-test:{start}") <= 3601
    with tenant_context(bravo):  # another agency's count starts at one
        assert rate_hit("request-cost-test", limit=1, window=3600) == 0
        cache.delete(f"rate:request-cost-test:{start}")
    with tenant_context(alpha):
        cache.delete(f"rate:request-cost-test:{start}")
