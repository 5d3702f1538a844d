"""Two "prepare quote" requests for one opportunity at the same moment (issue 18): one makes the quote
(201), the other gets the answer a second quote always gets (400, "already has a quote"), never a
500. Real concurrent requests: threads released together against gunicorn with two workers.

Before the fix, 3 of 30 pairs answered 500 (DoesNotExist): the opportunity was locked with its stage
joined in, and once the first request had moved it to "quoted" the second's locked row no longer
joined (crm.pipeline.services.opportunity_lock).
"""
import json
import threading
import urllib.error
import urllib.request

import pytest
from django_tenants.utils import tenant_context

from accounts.scopes import all_scopes
from accounts.tokens import token_create
from crm.pipeline.models import Opportunity
from crm.trips.models import Trip

from .conftest import staff
from .test_trips_services import opportunity, person

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PAIRS = 30


def post(server, path: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=b"", method="POST", headers={
        "Host": f"alpha.localhost:{server.port}", "Authorization": f"Token {token}", "Accept-Language": "en"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"raw": body[:300].decode(errors="replace")}


def both_at_once(server, path: str, token: str) -> list[tuple[int, dict]]:
    start = threading.Barrier(2)
    answers = [None, None]

    def one(i):
        start.wait()
        answers[i] = post(server, path, token)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_two_concurrent_quotes_make_one_quote_and_no_server_error(app_server, committed, alpha):  # noqa: F811
    with committed(), tenant_context(alpha):
        sales = staff(alpha, "sales")
        token = token_create(user=sales, name="quote race", scopes=all_scopes())[1]
        customer = person()
        ids = [opportunity(customer, owner=sales).pk for _ in range(PAIRS)]
    try:
        pairs = [both_at_once(app_server, f"/api/v1/opportunities/{pk}/quote/", token) for pk in ids]
        statuses = [sorted(status for status, _body in pair) for pair in pairs]
        assert all(status < 500 for pair in statuses for status in pair), [p for p in pairs if max(p)[0] >= 500]
        assert statuses == [[201, 400]] * PAIRS, statuses
        for pair in pairs:
            refused = next(body for status, body in pair if status == 400)
            assert "already has a quote" in refused["error"]["fields"]["opportunity"][0]
        with committed(), tenant_context(alpha):
            assert Trip.objects.filter(opportunity_id__in=ids).count() == PAIRS  # one quote each, not two
            assert set(Opportunity.objects.filter(pk__in=ids).values_list("stage__code", flat=True)) == {"quoted"}
    finally:
        with committed(), tenant_context(alpha):
            Trip.objects.filter(opportunity_id__in=ids).delete()
            Opportunity.objects.filter(pk__in=ids).delete()
            customer.delete()
