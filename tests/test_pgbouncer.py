"""Caravan behind a real PgBouncer in transaction-pooling mode (pool of 2 server connections).

django-tenants sets ``search_path`` once per connection; with transaction pooling the next
statement may run on a server connection another agency left its path on. The first test shows
that leak with plain django-tenants through PgBouncer (so the rest prove something); the others
run interleaved agency work through ``caravan.db`` (DATABASE_POOLING=transaction) and find every
read, write, COPY and task in its own agency.

Each client here is a connection of its own (``connections["default"]`` replaced in its thread),
in autocommit through PgBouncer, so what it writes is committed: the tests delete it again.
"""
import os
import threading

import psycopg
import pytest
from celery import shared_task
from django.db import connection, connections, transaction
from django_tenants.postgresql_backend.base import DatabaseWrapper as PlainWrapper
from django_tenants.utils import tenant_context

from accounts.models import User
from caravan.db.base import DatabaseWrapper as PooledWrapper
from tests.servers import database_url, free_port, gunicorn_server, on_default
from caravan.tenancy.tasks import AgencyTask
from crm.customers.models import ChangeLog, Customer
from crm.customers.services import customer_create

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# With CARAVAN_TEST_PGBOUNCER=1 the test's own transaction holds one of the pool's two server
# connections; these tests need both (the isolation tests are what that run is for).
through_pgbouncer_already = pytest.mark.skipif(bool(os.environ.get("CARAVAN_TEST_PGBOUNCER")),
                                               reason="needs the whole pool; run without CARAVAN_TEST_PGBOUNCER")


def client(pgbouncer, engine):
    """A new Django connection through PgBouncer with ``engine``'s wrapper (not yet connected)."""
    settings_dict = pgbouncer.settings_dict(connection.settings_dict)
    settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = engine is PooledWrapper
    return engine(settings_dict, alias="default")


def staff_emails(wrapper) -> set[str]:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT email FROM accounts_user")
        return {row[0] for row in cursor.fetchall()}


def domains(emails) -> set[str]:
    return {e.rsplit("@", 1)[1] for e in emails}


def interleave(pgbouncer, engine, alpha, bravo, rounds: int = 5) -> list[set[str]]:
    """Two clients take turns, one in alpha and one in bravo; what alpha's client reads each round."""
    a, b = client(pgbouncer, engine), client(pgbouncer, engine)
    a.set_tenant(alpha)
    b.set_tenant(bravo)
    seen = []
    try:
        for _ in range(rounds):
            seen.append(domains(staff_emails(a)))
            staff_emails(b)  # runs on the server connection alpha's client just gave back
    finally:
        a.close()
        b.close()
    return seen


@through_pgbouncer_already
def test_plain_django_tenants_reads_another_agency_behind_transaction_pooling(pgbouncer, alpha, bravo):
    seen = interleave(pgbouncer, PlainWrapper, alpha, bravo)
    assert {"bravo.test"} in seen, seen  # the leak this backend exists to prevent


@through_pgbouncer_already
def test_pooled_backend_keeps_each_client_in_its_agency(pgbouncer, alpha, bravo):
    assert interleave(pgbouncer, PooledWrapper, alpha, bravo) == [{"alpha.test"}] * 5


@through_pgbouncer_already
def test_pooled_backend_leaves_no_search_path_on_server_connections(pgbouncer, alpha):
    def server_paths(set_to: str | None = None) -> list[str]:
        """The session search_path of each of the pool's two server connections (both held at once)."""
        bare = [psycopg.connect(host="127.0.0.1", port=pgbouncer.port, dbname=connection.settings_dict["NAME"],
                                user=connection.settings_dict["USER"] or "postgres") for _ in range(2)]
        try:
            for conn in bare:
                conn.execute("BEGIN")
            if set_to:
                for conn in bare:
                    conn.execute(f"SET search_path = {set_to}")  # session-level: stays on the server connection
            paths = [conn.execute("SHOW search_path").fetchone()[0] for conn in bare]
            for conn in bare:
                conn.commit()
            return paths
        finally:
            for conn in bare:
                conn.close()

    assert server_paths(set_to="pg_catalog") == ["pg_catalog"] * 2
    a = client(pgbouncer, PooledWrapper)
    a.set_tenant(alpha)
    try:
        assert domains(staff_emails(a)) == {"alpha.test"}
        with on_default(a), transaction.atomic():
            assert domains(staff_emails(a)) == {"alpha.test"}
    finally:
        a.close()
    assert server_paths() == ["pg_catalog"] * 2  # SET LOCAL ended with each transaction


@through_pgbouncer_already
def test_switching_agency_inside_a_transaction_and_after_a_savepoint_rollback(pgbouncer, alpha, bravo):
    a = client(pgbouncer, PooledWrapper)
    try:
        with on_default(a), transaction.atomic():
            with tenant_context(alpha):
                assert domains(User.objects.values_list("email", flat=True)) == {"alpha.test"}
            with tenant_context(bravo):
                try:
                    with transaction.atomic():
                        assert domains(User.objects.values_list("email", flat=True)) == {"bravo.test"}
                        raise RuntimeError("roll back to the savepoint")
                except RuntimeError:
                    pass
                assert domains(User.objects.values_list("email", flat=True)) == {"bravo.test"}
            with tenant_context(alpha):
                assert domains(User.objects.values_list("email", flat=True)) == {"alpha.test"}
    finally:
        a.close()


@through_pgbouncer_already
def test_copy_carries_the_search_path_in_autocommit_and_in_a_transaction(pgbouncer, alpha, bravo):
    a, b = client(pgbouncer, PooledWrapper), client(pgbouncer, PooledWrapper)
    a.set_tenant(alpha)
    b.set_tenant(bravo)

    def copied(wrapper) -> set[str]:
        with wrapper.cursor() as cursor, cursor.copy("COPY (SELECT email FROM accounts_user) TO STDOUT") as copy:
            return domains(row[0] for row in copy.rows())

    try:
        for _ in range(3):
            assert copied(a) == {"alpha.test"}
            assert copied(b) == {"bravo.test"}
        with on_default(a), transaction.atomic():
            assert copied(a) == {"alpha.test"}
            a.set_tenant(bravo)
            assert copied(a) == {"bravo.test"}
        assert a.get_autocommit()
    finally:
        a.close()
        b.close()


@through_pgbouncer_already
def test_querysets_iterate_without_server_side_cursors(pgbouncer, alpha, bravo):
    """``.iterator()`` (the exports use it) must not DECLARE a cursor that the next transaction's
    server connection would not have: caravan.db turns server-side cursors off."""
    a = client(pgbouncer, PooledWrapper)
    assert a.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True
    try:
        with on_default(a):
            for agency in (alpha, bravo, alpha):
                with tenant_context(agency):
                    emails = [u.email for u in User.objects.order_by("pk").iterator(chunk_size=2)]
                assert domains(emails) == {f"{agency.slug}.test"}
    finally:
        a.close()


@through_pgbouncer_already
def test_pgbouncer_keeps_each_clients_time_zone(pgbouncer):
    """Django sets the session's TimeZone once per connection (a session-level SET, not carried by
    caravan.db): PgBouncer tracks TimeZone per client and restores it on whichever server connection
    the client gets, so that one is safe behind transaction pooling."""
    settings_dict = pgbouncer.settings_dict(connection.settings_dict)
    clients = [psycopg.connect(host="127.0.0.1", port=pgbouncer.port, dbname=settings_dict["NAME"],
                               user=settings_dict["USER"] or "postgres", autocommit=True) for _ in range(3)]
    try:
        zones = ["Asia/Shanghai", "America/New_York", "UTC"]
        for conn, zone in zip(clients, zones):
            conn.execute(f"SET TIME ZONE '{zone}'")
        for _ in range(3):
            for conn, zone in zip(clients, zones):
                assert conn.execute("SHOW TimeZone").fetchone()[0] == zone
    finally:
        for conn in clients:
            conn.close()


@shared_task(base=AgencyTask, name="tests.pgbouncer.staff_domains")
def staff_domains_task() -> list[str]:
    return sorted(domains(User.objects.values_list("email", flat=True)))


def interleave_threads(pgbouncer, engine, alpha, bravo, threads: int = 4, rounds: int = 12):
    """Threads each switching agencies every step, through 2 server connections: a read, a write in
    a transaction, COPY, and a task as the worker runs it. Returns what went wrong, what each thread
    created and what each agency then holds (the committed customers are deleted again)."""
    agencies = [alpha, bravo]
    failures, created = [], {"alpha": set(), "bravo": set()}
    lock = threading.Lock()

    def work(n: int):
        wrapper = client(pgbouncer, engine)
        try:
            with on_default(wrapper):
                for step in range(rounds):
                    agency = agencies[(n + step) % 2]
                    own = f"{agency.slug}.test"
                    with tenant_context(agency):
                        got = domains(User.objects.values_list("email", flat=True))
                        if got != {own}:
                            failures.append((n, step, agency.slug, "read", got))
                        with transaction.atomic():
                            customer = customer_create(actor=None, via=ChangeLog.Via.SYSTEM,
                                                       name=f"PgBouncer {agency.slug} {n}-{step}")
                        with lock:
                            created[agency.slug].add(customer.name)
                        if not Customer.objects.filter(pk=customer.pk, name=customer.name).exists():
                            failures.append((n, step, agency.slug, "own write not found"))
                        with connection.cursor() as cursor, \
                                cursor.copy("COPY (SELECT email FROM accounts_user) TO STDOUT") as copy:
                            got = domains(row[0] for row in copy.rows())
                        if got != {own}:
                            failures.append((n, step, agency.slug, "copy", got))
                    got = staff_domains_task.apply(headers={"_schema_name": agency.schema_name}).get()
                    if got != [own]:
                        failures.append((n, step, agency.slug, "task", got))
        except Exception as e:  # noqa: BLE001  (reported by the test)
            failures.append((n, "raised", repr(e)))
        finally:
            wrapper.close()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    held = {}
    cleanup = client(pgbouncer, PooledWrapper)
    try:
        with on_default(cleanup):
            for agency in agencies:
                with tenant_context(agency):
                    mine = Customer.objects.filter(name__startswith="PgBouncer ")
                    held[agency.slug] = set(mine.values_list("name", flat=True))
                    mine.delete()
    finally:
        cleanup.close()
    return failures, created, held


@through_pgbouncer_already
def test_threads_interleaving_agencies_never_cross_the_fence(pgbouncer, alpha, bravo):
    failures, created, held = interleave_threads(pgbouncer, PooledWrapper, alpha, bravo)
    assert not failures, failures[:5]
    assert len(created["alpha"]) + len(created["bravo"]) == 4 * 12
    assert held == created  # every customer in the agency that made it, none in the other


@through_pgbouncer_already
def test_the_same_threads_with_plain_django_tenants_cross_it(pgbouncer, alpha, bravo):
    failures, created, held = interleave_threads(pgbouncer, PlainWrapper, alpha, bravo)
    assert failures or held != created  # reads, writes or tasks landed in the other agency


def staff_over_http(port: int, slug: str, token: str) -> set[str]:
    import json
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/staff/?page_size=200",
                                     headers={"Host": f"{slug}.localhost:{port}", "Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return domains(row["email"] for row in json.loads(response.read())["results"])


@through_pgbouncer_already
@pytest.mark.parametrize("pooling, crosses", [("transaction", False), ("session", True)])
def test_app_server_through_pgbouncer(pgbouncer, committed, tmp_path, alpha, bravo, pooling, crosses):
    """gunicorn (2 workers) on PgBouncer, four threads asking alpha's and bravo's API in turn: with
    DATABASE_POOLING=transaction every answer is its own agency's; with plain django-tenants
    (``session``) answers come back with the other agency's staff."""
    from accounts.models import ApiToken
    from accounts.scopes import all_scopes
    from accounts.tokens import token_create

    made = []
    with committed():
        tokens = {}
        for agency in (alpha, bravo):
            with tenant_context(agency):
                token, secret = token_create(user=User.objects.get(email=f"admin@{agency.slug}.test"), name="pgbouncer",
                                             scopes=all_scopes())
            tokens[agency.slug] = secret
            made.append((agency, token.pk))
    wrong, errors = [], []
    try:
        url = database_url(pgbouncer.settings_dict(connection.settings_dict))
        with gunicorn_server(port=free_port(), log_dir=tmp_path, DATABASE_URL=url, DATABASE_POOLING=pooling) as server:

            def ask(n: int):
                for step in range(10):
                    slug = ("alpha", "bravo")[(n + step) % 2]
                    try:
                        got = staff_over_http(server.port, slug, tokens[slug])
                    except Exception as e:  # noqa: BLE001  (a 401/500 from the wrong schema counts too)
                        errors.append((slug, repr(e)))
                        continue
                    if got != {f"{slug}.test"}:
                        wrong.append((slug, got))

            # Crossing under plain django-tenants depends on which server connection PgBouncer hands
            # out: ask in rounds until it shows (at most 5); the fixed backend must stay clean in all.
            for _round in range(5 if crosses else 3):
                threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=120)
                if crosses and (wrong or errors):
                    break
    finally:
        with committed():
            for agency, pk in made:
                with tenant_context(agency):
                    ApiToken.objects.filter(pk=pk).delete()
    if crosses:
        assert wrong or errors
    else:
        assert not wrong and not errors, (wrong[:3], errors[:3])


def test_the_isolation_run_really_goes_through_pgbouncer(_through_pgbouncer):
    if _through_pgbouncer is None:
        pytest.skip("only in the CARAVAN_TEST_PGBOUNCER=1 run")
    assert type(connections["default"]) is PooledWrapper
    assert connection.settings_dict["PORT"] == str(_through_pgbouncer.port)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    with psycopg.connect(host="127.0.0.1", port=_through_pgbouncer.port, dbname="pgbouncer", autocommit=True,
                         user=connection.settings_dict["USER"] or "postgres", cursor_factory=psycopg.ClientCursor) as admin:
        cursor = admin.execute("SHOW CLIENTS")
        columns = [c.name for c in cursor.description]
        databases = [dict(zip(columns, row))["database"] for row in cursor.fetchall()]
    assert connection.settings_dict["NAME"] in databases  # this very test's connection is PgBouncer's client
