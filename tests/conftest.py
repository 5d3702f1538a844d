"""Test fixtures: three agencies (alpha, bravo, charlie) with staff in every role, made once.

After healthchecks' alice/bob/charlie: every test can ask for a second agency and assert that
nothing of it is reachable. ``alpha`` and ``bravo`` are live; ``charlie`` is suspended.
All of it is committed in the test database once per session; each test then runs inside a
transaction that is rolled back, and the connection is put back on the public schema.
"""
import os
import socket
import threading
from collections import Counter

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import translation
from django_tenants.utils import schema_context, tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import Role
from billing import throttling
from tenants.models import Agency
from tenants.services import agency_onboard, agency_suspend

# localstripe for the whole session, wherever a test (or the app server) needs Stripe.
# The servers' fixtures, once for the whole suite: a session fixture imported into a test module is that module's
# own (pytest defines it again there), and each module would start its own gunicorn and keep it to the end.
from .servers import app_server, app_worker, committed, stripe_server, stripe_settings  # noqa: E402,F401  (fixtures)
from .servers import pgbouncer  # noqa: E402,F401  (fixture; PgBouncer in transaction mode)

AGENCIES = {"alpha": "Alpha Travel 阿尔法旅行", "bravo": "Bravo Tours 布拉沃旅游", "charlie": "Charlie Trips"}
OPERATOR = "operator@platform.test"


def password_for(slug: str, role: str) -> str:
    return f"pw-{slug}-{role}-Caravan!"


def agency_with_staff(slug: str, *, name: str, plan: str, before_staff=None):
    """Onboard an agency (committed) with one user per role, ``<role>@<slug>.test``; the admin has a
    TOTP device. ``before_staff(agency)`` runs first in the new schema (e.g. to move its id sequences)."""
    agency = agency_onboard(name=name, slug=slug, plan=plan, admin_email=f"first@{slug}.test",
                            admin_name="First Admin", language="en").agency
    if before_staff is not None:
        before_staff(agency)
    with tenant_context(agency):
        for role in Role.values:
            user = User.objects.create_user(f"{role}@{slug}.test", password_for(slug, role), role=role,
                                            full_name=f"{role.title()} of {slug}", language="en")
            if role == Role.ADMIN:
                give_totp_device(user)
    return agency


def host(slug: str | None) -> str:
    return f"{slug}.localhost" if slug else "localhost"


# Admins and the operator must pass a second step (accounts.mfa). Each has a real authenticator-app
# device with a known key; its steps are 5 s (not 30) so that a browser test signing the same person
# in again soon waits little for a fresh code: a code is accepted once (``fresh_totp_code``).
TOTP_STEP = 5
_totp_used: dict[str, int] = {}


def totp_key(email: str) -> str:
    import hashlib

    return hashlib.sha1(f"caravan-tests:{email}".encode()).hexdigest()


def totp_code(email: str, *, step: int = TOTP_STEP, key: str | None = None) -> str:
    from django_otp.oath import totp

    return f"{totp(bytes.fromhex(key or totp_key(email)), step=step):06d}"


def fresh_totp_code(email: str) -> str:
    """The current code of a test device, after waiting for the next step if this process used this one."""
    import time

    while int(time.time()) // TOTP_STEP <= _totp_used.get(email, -1):
        time.sleep(0.2)
    _totp_used[email] = int(time.time()) // TOTP_STEP
    return totp_code(email)


def give_totp_device(user: User):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.create(user=user, name="tests", key=totp_key(user.email), step=TOTP_STEP, confirmed=True)


def mark_verified(client: Client, user: User) -> None:
    """What the second step does (django_otp.login with the user's real device), for a client that
    ``force_login``-ed; inside the user's schema. Nothing for someone without a device."""
    from django.http import HttpRequest
    from django_otp import devices_for_user
    from django_otp import login as otp_login

    device = next(iter(devices_for_user(user, confirmed=True)), None)
    if device is None:
        return
    request = HttpRequest()
    request.user, request.session = user, client.session
    otp_login(request, device)
    request.session.save()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    if not connection.settings_dict["NAME"].startswith("test_"):
        pytest.fail("No test database was set up: mark the test django_db.")
    with django_db_blocker.unblock():
        call_command("migrate_platform", verbosity=0)
        with schema_context("public"):
            give_totp_device(User.objects.create_superuser(OPERATOR, "operator-pass-1!", full_name="Olga Operator"))
        for slug, name in AGENCIES.items():
            agency = agency_with_staff(slug, name=name, plan="professional")
            if slug == "charlie":
                agency_suspend(agency=agency, actor="conftest")
        connection.set_schema_to_public()


@pytest.fixture(scope="session", autouse=True)
def _through_pgbouncer(request):
    """``CARAVAN_TEST_PGBOUNCER=1`` (with ``DATABASE_POOLING=transaction``; ``make test`` runs
    test_isolation.py so a second time): the test database is set up directly, then every
    connection, the tests' own included, goes through a real PgBouncer in transaction mode."""
    if not os.environ.get("CARAVAN_TEST_PGBOUNCER"):
        yield None
        return
    from django.conf import settings

    if settings.DATABASE_POOLING != "transaction":
        pytest.fail("CARAVAN_TEST_PGBOUNCER needs DATABASE_POOLING=transaction (the caravan.db backend).")
    request.getfixturevalue("django_db_setup")
    bouncer = request.getfixturevalue("pgbouncer")
    direct = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(bouncer.port))
    yield bouncer
    connection.close()
    connection.settings_dict.update(direct)  # the test database is dropped directly, not through PgBouncer


@pytest.fixture(autouse=True)
def _back_to_public():
    """Each test starts on the public schema in English; requests may switch either."""
    translation.activate("en")
    throttling.forget_rate_limits()  # each agency's API limit read afresh (a test may change a plan or the setting)
    yield
    translation.deactivate()
    connection.set_schema_to_public()
    # A test's agency changes are rolled back, and so must be what requests cached of them.
    cache.delete_pattern("tenancy:host:*")


# Fixtures through which a test's rows are committed by another process (gunicorn, a Celery worker) or
# by the test itself outside its rolled-back transaction.
COMMITTING_FIXTURES = {"app_server", "app_worker", "committed", "worker"}


def _agency_id_tables(cursor) -> list[str]:
    """Every table of every agency schema with an integer ``id``, schema-qualified and quoted."""
    cursor.execute("""
        SELECT format('%I.%I', c.table_schema, c.table_name) FROM information_schema.columns c
        JOIN information_schema.tables t USING (table_schema, table_name)
        WHERE c.column_name = 'id' AND c.data_type IN ('integer', 'bigint') AND t.table_type = 'BASE TABLE'
          AND c.table_schema IN (SELECT schema_name FROM public.tenants_agency WHERE schema_name <> 'public')""")
    return [row[0] for row in cursor.fetchall()]


def _max_ids(cursor, tables: list[str]) -> dict[str, int]:
    if not tables:
        return {}
    cursor.execute(" UNION ALL ".join(f"SELECT '{t}', coalesce(max(id), 0) FROM {t}" for t in tables))
    return dict(cursor.fetchall())


@pytest.fixture(autouse=True)
def _media_root_forgotten():
    """After each test, the default storage forgets the folder it derived from MEDIA_ROOT: a test that
    pointed MEDIA_ROOT at its tmp_path otherwise leaves django-tenants' storage writing there (its
    ``relative_media_root`` is not reset when the setting is), and a later test's files miss the app
    server (CI met it: the page test's seeded import and attachment answered 500 and 404)."""
    yield
    from django.core.files.storage import storages

    storage = storages["default"]
    for name in ("relative_media_root", "base_location", "location", "base_url"):
        storage.__dict__.pop(name, None)


@pytest.fixture
def media(settings, tmp_path):
    """MEDIA_ROOT in the test's own folder (uploaded files, import files), forgotten by the storage before and after."""
    from django.core.files.storage import storages

    settings.MEDIA_ROOT = str(tmp_path / "media")
    storages["default"].__dict__.pop("relative_media_root", None)
    yield
    storages["default"].__dict__.pop("relative_media_root", None)


@pytest.fixture(autouse=True)
def _committed_rows_removed(request):
    """Rows the app server, a worker or ``committed`` block added to an agency schema during a test are
    deleted after it (every table with an integer id, rows past the id it had before), so the next test
    starts from the agencies this file made and no test depends on another's leftovers (access-log
    entries of pages a browser opened, session records of its sign-ins, import jobs, ...). Rows such a
    test *changed* it must still put back itself (tests/servers.py, ``committed``)."""
    if not COMMITTING_FIXTURES & set(request.fixturenames):
        yield
        return
    import psycopg

    from .servers import database_url

    request.getfixturevalue("django_db_setup")  # the test database's name is in the settings from here on
    url = database_url(connection.settings_dict)
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        tables = _agency_id_tables(cursor)
        before = _max_ids(cursor, tables)
    yield
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        grown = [t for t, top in _max_ids(cursor, tables).items() if top > before[t]]
        if grown:
            cursor.execute("SET lock_timeout = '10s'")
            with conn.transaction():
                cursor.execute("SET LOCAL session_replication_role = replica")  # no FK triggers: any order
                for table in grown:
                    cursor.execute(f"DELETE FROM {table} WHERE id > %s", [before[table]])
                _orphans_removed(cursor, grown)


def _orphans_removed(cursor, tables: list[str]) -> None:
    """Rows of tables without an integer id (a trip's summary, keyed by its trip) that pointed at rows just
    deleted: with FK triggers off they would stay, and a later dump/restore of the schema fails on them."""
    cursor.execute("""
        SELECT format('%I.%I', ns.nspname, child.relname), a.attname,
               format('%I.%I', pns.nspname, parent.relname), pa.attname
        FROM pg_constraint k
        JOIN pg_class child ON child.oid = k.conrelid JOIN pg_namespace ns ON ns.oid = child.relnamespace
        JOIN pg_class parent ON parent.oid = k.confrelid JOIN pg_namespace pns ON pns.oid = parent.relnamespace
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
        JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1]
        WHERE k.contype = 'f' AND array_length(k.conkey, 1) = 1""")
    for child, column, parent, key in cursor.fetchall():
        if parent in tables:
            cursor.execute(f"DELETE FROM {child} c WHERE c.{column} IS NOT NULL AND NOT EXISTS "
                           f"(SELECT 1 FROM {parent} p WHERE p.{key} = c.{column})")


@pytest.fixture
def agencies(db):
    return {a.slug: a for a in Agency.objects.agencies()}


@pytest.fixture
def alpha(agencies):
    return agencies["alpha"]


@pytest.fixture
def bravo(agencies):
    return agencies["bravo"]


@pytest.fixture
def charlie(agencies):
    return agencies["charlie"]


def field_by_field(field: str, old: str, new: str) -> list[tuple[str, str, str]]:
    """A change-log entry as (field, old, new) entries: a creation's one ``created`` entry stands for one per value
    it holds (what the change log wrote before issue 22), any other entry for itself."""
    from crm.customers.snapshot import CREATED, created_values

    if field == CREATED:
        return [(name, "", value) for name, value in created_values(new).items()]
    return [(field, old, new)]


def staff(agency: Agency, role: str) -> User:
    with tenant_context(agency):
        return User.objects.get(email=f"{role}@{agency.slug}.test")


@pytest.fixture
def page_client(agencies):
    """``page_client("alpha", "sales")``: a client signed in on alpha's host (``on=`` another host)."""

    def make(slug: str | None, role: str | None = None, *, on: str | None = None) -> Client:
        client = Client(HTTP_HOST=on or host(slug))
        if role is not None:
            agency = agencies[slug]
            with tenant_context(agency):
                user = User.objects.get(email=f"{role}@{slug}.test")
                client.force_login(user)
                mark_verified(client, user)
            connection.set_schema_to_public()
        return client

    return make


@pytest.fixture
def api_client(agencies):
    """``api_client("alpha", "admin")``: an API client with a token of alpha's admin (every scope: the
    role alone decides), on alpha's host. ``scopes=[...]`` narrows the token."""
    from accounts.scopes import all_scopes
    from accounts.tokens import token_create

    def make(slug: str, role: str | None = None, *, on: str | None = None, scopes=None) -> APIClient:
        client = APIClient(HTTP_HOST=on or host(slug), HTTP_ACCEPT_LANGUAGE="en")
        if role is not None:
            with tenant_context(agencies[slug]):
                _token, secret = token_create(user=User.objects.get(email=f"{role}@{slug}.test"), name="tests",
                                              scopes=all_scopes() if scopes is None else scopes)
            connection.set_schema_to_public()
            client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
        return client

    return make


@pytest.fixture
def operator_client(db):
    client = APIClient(HTTP_HOST="localhost", HTTP_ACCEPT_LANGUAGE="en")
    with schema_context("public"):
        operator = User.objects.get(email=OPERATOR)
        client.force_login(operator)
        mark_verified(client, operator)
    return client


# --- a real SMTP server ---------------------------------------------------------------------------

class _Inbox:
    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        import email

        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="session")
def _smtp_server():
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def mailbox(_smtp_server, settings):
    """Messages delivered over SMTP to an in-process aiosmtpd server during this test."""
    inbox, port = _smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    with inbox.lock:
        inbox.messages.clear()
    return inbox.messages


LONG_MARKERS = {"browser", "slow"}


def pytest_collection_modifyitems(config, items):
    """The files that drive a browser or start servers first, then the rest by number of tests: under
    pytest-xdist (``make test``: ``--dist loadfile --no-loadscope-reorder``) each file goes whole to the next free
    process in this order, so the long files start early and the run does not end with one process on a long
    file while the other has nothing left. Order within a file is kept."""
    _unique_schemathesis_ids(items)
    files: dict[str, list] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::", 1)[0], []).append(item)

    def weight(tests: list) -> tuple:
        long = any(marker.name in LONG_MARKERS for test in tests for marker in test.iter_markers())
        return (not long, -len(tests))

    items[:] = [item for tests in sorted(files.values(), key=weight) for item in tests]


def _unique_schemathesis_ids(items) -> None:
    """schemathesis (test_api_contract.py) gives all of a test's operations the test's own node id; pytest-xdist
    keys the tests it hands out by node id, so it ran one operation of each. The operation goes into the id."""
    counts = Counter(item.nodeid for item in items)
    for item in items:
        if getattr(item, "operation_label", None) and counts[item.nodeid] > 1:
            if hasattr(item, "_id"):  # pytest 9 keeps a NodeId
                item._id = item.parent.id.child(item.name)  # the name holds the operation: test_agency_api[GET /…]
            else:
                item._nodeid = f"{item.parent.nodeid}::{item.name}"
