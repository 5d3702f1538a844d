"""PostgreSQL drops the app's connections (``pg_terminate_backend``, as in a failover) while requests
are in flight: reads are answered once more on a new connection (caravan.dbfaults), writes are not
repeated and say so.

A real gunicorn (tests/servers.py) on the test database, once with django-tenants' backend and once
with ``caravan.db`` (DATABASE_POOLING=transaction), its connections named ``caravan-faults`` so only
they are terminated (not this test's own). Deterministic cases hold a lock on alpha's customer table
so the request is certainly waiting in PostgreSQL when its backend is terminated.
"""
import json
import re
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlencode

import psycopg
import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from tests.servers import database_url, free_port, gunicorn_server
from tests.test_production_settings import Client

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

APP = "caravan-faults"
TERMINATE = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
             "AND pid <> pg_backend_pid() AND application_name = %s")


@pytest.fixture(scope="module", params=["session", "transaction"])
def fault_server(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn whose database connections carry application_name=caravan-faults, with django-tenants'
    backend (session) or caravan.db (transaction); its ``dsn`` for this test's own connections."""
    settings_dict = connection.settings_dict
    url = database_url(settings_dict) + f"?application_name={APP}"
    with django_db_blocker.unblock():
        with gunicorn_server(port=free_port(), log_dir=tmp_path_factory.mktemp(f"faults-{request.param}"),
                             DATABASE_URL=url, DATABASE_POOLING=request.param) as server:
            server.dsn = database_url(settings_dict)
            server.pooling = request.param
            yield server


@pytest.fixture
def signed_in(fault_server, committed):  # noqa: F811
    """A Client signed in as sales@alpha.test over plain http; alpha's sessions and the user's last
    sign-in are put back afterwards."""
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from tenants.models import Agency
    from tests.conftest import password_for

    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            last_login = User.objects.get(email="sales@alpha.test").last_login
            sessions = set(Session.objects.values_list("session_key", flat=True))
    client = Client(fault_server, proxied=False)
    page = client.request("GET", "/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = client.request("POST", "/accounts/login/", {"csrfmiddlewaretoken": token, "username": "sales@alpha.test",
                                                           "password": password_for("alpha", "sales")})
    assert response.status == 302, response.text[:300]
    yield client
    with committed(), tenant_context(agency):
        User.objects.filter(email="sales@alpha.test").update(last_login=last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


def _waiting_backends(admin) -> list[int]:
    return [row[0] for row in admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock' "
        "AND datname = current_database()", [APP]).fetchall()]


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail("timed out waiting")


def _in_background(call):
    box = {}
    thread = threading.Thread(target=lambda: box.update(response=call()))
    thread.start()
    return thread, box


@pytest.fixture
def two_namesakes(committed):  # noqa: F811
    """A customer named "Fence <tag>" at alpha and one at bravo; removed afterwards."""
    from crm.customers import services
    from crm.customers.models import ChangeLog, Customer
    from tenants.models import Agency

    name = f"Fence {uuid.uuid4().hex[:8]}"
    made = []
    for slug in ("alpha", "bravo"):
        with committed():
            agency = Agency.objects.get(slug=slug)
            with tenant_context(agency):
                made.append((agency, services.customer_create(actor=None, via=ChangeLog.Via.API,
                                                              name=f"{name} {slug}").pk))
    yield name
    for agency, pk in made:
        with committed(), tenant_context(agency):
            Customer.objects.filter(pk=pk).delete()


def test_a_read_whose_connection_is_terminated_is_answered_once_more(fault_server, signed_in, two_namesakes):
    name = two_namesakes
    with psycopg.connect(fault_server.dsn, autocommit=True) as admin, psycopg.connect(fault_server.dsn) as locker:
        locker.execute('LOCK TABLE "alpha".crm_customer IN ACCESS EXCLUSIVE MODE')  # reads now wait
        query = urlencode({"search": name})
        thread, box = _in_background(lambda: signed_in.request("GET", f"/api/v1/customers/?{query}",
                                                               headers={"Accept": "application/json"}))
        first = _wait_for(lambda: _waiting_backends(admin))[0]
        admin.execute("SELECT pg_terminate_backend(%s)", [first])
        second = _wait_for(lambda: [pid for pid in _waiting_backends(admin) if pid != first])  # the retry, waiting
        assert second
        locker.rollback()  # lock released: the retried read goes on
        thread.join(30)
    response = box["response"]
    assert response.status == 200, response.text[:500]
    names = [row["name"] for row in json.loads(response.text)["results"]]
    # The retry ran on a new connection with alpha's search_path again: alpha's customer, never bravo's.
    assert names == [f"{name} alpha"], names
    assert "Database connection lost in the view" in fault_server.log.read_text()


def test_a_write_whose_connection_is_terminated_is_not_repeated(fault_server, signed_in, committed):  # noqa: F811
    from crm.customers.models import Customer
    from tenants.models import Agency

    name = f"Fault {uuid.uuid4().hex[:8]}"
    client = signed_in
    client.request("GET", "/customers/")  # the CSRF cookie
    with psycopg.connect(fault_server.dsn, autocommit=True) as admin, psycopg.connect(fault_server.dsn) as locker:
        locker.execute('LOCK TABLE "alpha".crm_customer IN ACCESS EXCLUSIVE MODE')
        thread, box = _in_background(lambda: _post_json(client, "/api/v1/customers/", {"name": name}))
        first = _wait_for(lambda: _waiting_backends(admin))[0]
        admin.execute("SELECT pg_terminate_backend(%s)", [first])
        thread.join(30)
        time.sleep(0.5)
        assert not [pid for pid in _waiting_backends(admin) if pid != first]  # nothing sent it again
        locker.rollback()
    response = box["response"]
    assert response.status == 503, response.text[:500]
    assert json.loads(response.text)["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"]
    time.sleep(0.5)
    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        assert not Customer.objects.filter(name=name).exists()  # written neither once nor twice
    # Sent again by the client, it is written once.
    again = _post_json(client, "/api/v1/customers/", {"name": name})
    assert again.status == 201, again.text[:500]
    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        assert Customer.objects.filter(name=name).count() == 1
        Customer.objects.filter(name=name).delete()


def _post_json(client, path, data):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    headers = {"Host": client.host, "Accept": "application/json", "Content-Type": "application/json",
               "X-CSRFToken": client.cookies["csrftoken"],
               "Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())}
    conn.request("POST", path, body=json.dumps(data), headers=headers)
    response = conn.getresponse()
    response.text = response.read().decode(errors="replace")
    conn.close()
    return response


def test_no_read_fails_while_backends_are_terminated_under_load(fault_server, signed_in):
    """Six clients read pages and the API for a while; every 1.5 s all the server's backends are
    terminated. Every read answers, none with a server error."""
    paths = ["/", "/customers/", "/api/v1/customers/?page_size=20", "/search/?q=a", "/pipeline/", "/tasks/"]
    statuses: Counter = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def reader(offset: int):
        client = Client(fault_server, proxied=False)
        client.cookies = dict(signed_in.cookies)
        i = offset
        while not stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            try:
                response = client.request("GET", path)
            except OSError as exc:  # a reset connection would be a failure too
                failures.append(f"{path}: {exc!r}")
                continue
            statuses[response.status] += 1
            if response.status >= 500:
                failures.append(f"{path}: {response.status}")

    def retries() -> Counter:
        log = fault_server.log.read_text()
        return Counter(view=log.count("in the view for GET"), middleware=log.count("while answering GET"),
                       stream=log.count("before streaming"))

    before = retries()
    kills = []
    threads = [threading.Thread(target=reader, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    try:
        with psycopg.connect(fault_server.dsn, autocommit=True) as admin:
            for _ in range(8):
                time.sleep(1.5)
                kills.append(admin.execute(TERMINATE, [APP]).fetchone()[0])
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert sum(kills) >= 8, kills  # the server's connections really were terminated, repeatedly
    assert statuses[200] > 50, statuses
    assert not failures, (failures, statuses)
    assert set(statuses) <= {200}, statuses
    retried = retries() - before
    print(f"{fault_server.pooling}: {statuses[200]} reads, {sum(kills)} backends terminated, retried: {dict(retried)}")
    assert sum(retried.values()) >= 1, retried  # the terminations did hit requests, which were answered again


# --- Streamed responses (the generic guard; the streams themselves are the exports' own) ----------

def _terminate(wrapper, dsn) -> None:
    """End ``wrapper``'s server backend, as a failover would."""
    pid = wrapper.connection.info.backend_pid
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def _stream_request(view):
    from django.test import RequestFactory
    from django.urls import ResolverMatch

    request = RequestFactory().get("/export.csv")
    request.resolver_match = ResolverMatch(view, (), {})
    return request


def test_a_stream_cut_after_it_started_ends_visibly(committed):  # noqa: F811
    """After the first chunk nothing can be repeated: a CSV gets a last line saying it is incomplete
    and the error goes on to the server, which aborts the transfer (no clean end)."""
    from django.db import InterfaceError, OperationalError, connections
    from django.http import StreamingHttpResponse

    from caravan.dbfaults import RetryLostConnectionMiddleware

    dsn = database_url(connection.settings_dict)
    with committed():
        wrapper = connections["default"]
        wrapper.ensure_connection()

        def rows():
            yield "id,name\r\n1,Wang\r\n"
            _terminate(wrapper, dsn)
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT 2, 'Li'")
                yield "%s,%s\r\n" % cursor.fetchone()

        def view(request):
            return StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")

        response = RetryLostConnectionMiddleware(view)(_stream_request(view))
        chunks = []
        with pytest.raises((OperationalError, InterfaceError)):
            for chunk in response.streaming_content:
                chunks.append(chunk)
    body = b"".join(chunks).decode()
    assert body.startswith("id,name\r\n1,Wang\r\n")
    assert "incomplete" in body.strip().splitlines()[-1]
    assert "Li" not in body


def test_a_stream_whose_connection_is_lost_before_the_first_chunk_is_run_once_more(committed):  # noqa: F811
    from django.db import connections
    from django.http import StreamingHttpResponse

    from caravan.dbfaults import RetryLostConnectionMiddleware

    dsn = database_url(connection.settings_dict)
    calls = []
    with committed():
        connections["default"].ensure_connection()

        def view(request):
            calls.append(1)

            def rows():
                wrapper = connections["default"]
                if len(calls) == 1:
                    wrapper.ensure_connection()
                    _terminate(wrapper, dsn)
                with wrapper.cursor() as cursor:
                    cursor.execute("SELECT 'id,name\r\n1,Wang\r\n'")
                    yield cursor.fetchone()[0]

            return StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")

        response = RetryLostConnectionMiddleware(view)(_stream_request(view))
        body = b"".join(response.streaming_content).decode()
    assert body == "id,name\r\n1,Wang\r\n"
    assert len(calls) == 2
