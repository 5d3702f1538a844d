"""Real servers for tests that need one: a gunicorn app server on the test database, and
localstripe (a fake, stateful Stripe) for billing.

pytest-django's ``live_server`` cannot be used here: it needs ``transactional_db``, whose flush
at the end of each test would wipe the agencies that conftest.py commits once per session. The
app server below is a separate process that reads and writes the committed test database, so
whatever a test changes through it is committed: restore it afterwards (see ``committed``).
Mark such tests ``django_db`` all the same: pytest-django creates the test database only when
some collected test asks for it, and conftest.py's agencies are made in it.

Import what you need in a test module: ``from tests.servers import app_server, committed``.
"""
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import dj_database_url
import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A postgres:// URL for Django's connection settings (a socket-directory host is percent-encoded)."""
    host = settings_dict.get("HOST") or ""
    if host.startswith("/"):
        host = quote(host, safe="")
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(settings_dict['NAME'], safe='')}"


def http_status(url: str, host: str, timeout: float = 2.0, headers: dict | None = None) -> int | None:
    """The status of GET ``url`` with ``Host: host`` (and ``headers``), redirects not followed; None if
    nothing answers."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers={"Host": host, **(headers or {})})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def stop(process: subprocess.Popen, *, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def wait_for_port(port: int, process: subprocess.Popen, log: Path, name: str, *, timeout: float) -> None:
    """Until 127.0.0.1:``port`` accepts a connection; fails the test with the log's tail if the
    process exits or ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{name} did not start:\n{log_tail(log)}")
            time.sleep(0.1)


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class AppServer:
    port: int
    log: Path
    env: dict  # what the server runs with: a worker started with it works for this server

    def url(self, slug: str | None = None, path: str = "/") -> str:
        """``url("alpha", "/staff/")`` → http://alpha.localhost:<port>/staff/ (Chromium resolves *.localhost)."""
        host = f"{slug}.localhost" if slug else "localhost"
        return f"http://{host}:{self.port}{path}"


STRIPE_SECRET_KEY = "sk_test_caravan"
STRIPE_WEBHOOK_SECRET = "whsec_caravan_tests"


@pytest.fixture(scope="session")
def stripe_server(tmp_path_factory) -> str:
    """localstripe on a free port for the session; its URL. The Stripe client is real, never patched."""
    port = free_port()
    folder = tmp_path_factory.mktemp("localstripe")
    log = folder / "localstripe.log"
    # Its state in this session's folder: localstripe's own /tmp/localstripe.pickle is shared by all.
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "infra.localstripe_state", "--state", str(folder / "state.pickle"),
                                    "--port", str(port), "--from-scratch"],
                                   cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, process, log, "localstripe", timeout=30)
        yield url
    finally:
        stop(process, timeout=10)


@pytest.fixture
def stripe_settings(settings, stripe_server):
    """Point this process's Stripe client at localstripe."""
    settings.STRIPE_API_BASE = stripe_server
    settings.STRIPE_SECRET_KEY = STRIPE_SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_caravan"
    return settings


@contextmanager
def gunicorn_server(*, port: int, log_dir: Path, ready_headers: dict | None = None, **extra_env: str):
    """gunicorn serving caravan.wsgi on the test database (committed) until the block ends; extra
    environment on top of what every test server needs. ``ready_headers``: sent with the readiness
    probe (e.g. ``X-Forwarded-Proto: https`` for a server that redirects plain http)."""
    env = os.environ.copy()
    env.update({
        "DATABASE_URL": database_url(connection.settings_dict),
        "PLATFORM_PORT": str(port),
        "STATICFILES_MANIFEST": "0",
        "FAST_PASSWORD_HASHING": "1",
        "DJANGO_SETTINGS_MODULE": "caravan.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]
                                      + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]),
        **extra_env,
    })
    log = log_dir / "gunicorn.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "caravan.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--access-logfile", "-", "--error-logfile", "-", "--graceful-timeout", "5"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        # Python's resolver does not know *.localhost (Chromium does): ask 127.0.0.1 with a Host header.
        while http_status(f"http://127.0.0.1:{port}/accounts/login/", f"alpha.localhost:{port}",
                          headers=ready_headers) != 200:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer on port {port} within 60 s:\n{log_tail(log)}")
            time.sleep(0.2)
        yield AppServer(port=port, log=log, env=env)
    finally:
        stop(process, timeout=15)


APP_SERVER_NAME = "caravan-test-app-server"


@pytest.fixture(scope="session")
def app_server(django_db_setup, django_db_blocker, tmp_path_factory, stripe_server):
    """gunicorn serving caravan.wsgi on the (committed) test database, for the whole session."""
    settings_dict = connection.settings_dict  # after django_db_setup: NAME is the test database
    if settings_dict["NAME"] == dj_database_url.parse(os.environ["DATABASE_URL"])["NAME"]:
        pytest.fail("No test database was set up (pytest-django makes one only when a collected test asks for it): "
                    "mark the tests that use app_server with pytest.mark.django_db.")
    port = free_port()
    # Its connections (and its workers', app_worker) carry a name of their own: the wait below is for them alone.
    server_env = {"DATABASE_URL": f"{database_url(settings_dict)}?application_name={APP_SERVER_NAME}",
                  "STRIPE_API_BASE": stripe_server, "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
                  "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET, "STRIPE_PUBLISHABLE_KEY": "pk_test_caravan",
                  "CELERY_QUEUE": f"caravan-tests-{port}"}  # only ``app_worker`` consumes what this server queues
    try:
        with gunicorn_server(port=port, log_dir=tmp_path_factory.mktemp("app-server"), **server_env) as server:
            yield server
    finally:
        # The test database is dropped after this: wait until the workers' connections are gone.
        with django_db_blocker.unblock():
            deadline = time.monotonic() + 10
            with connection.cursor() as cursor:
                while time.monotonic() < deadline:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                                   [settings_dict["NAME"], APP_SERVER_NAME])
                    if cursor.fetchone()[0] == 0:
                        break
                    time.sleep(0.1)


@pytest.fixture
def app_worker(app_server, tmp_path):
    """A Celery worker for the app server's queue, on the same committed test database, for one test.
    Messages queued by earlier tests (with no worker running) are purged first."""
    env = app_server.env
    queue = env["CELERY_QUEUE"]
    subprocess.run([sys.executable, "-m", "celery", "-A", "caravan", "purge", "-f", "-Q", queue], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=60)
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "caravan", "worker", "--pool", "solo",
                                    "--loglevel", "INFO", "-n", f"tests-{queue}@%h"],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"ready." not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start:\n{log_tail(log)}")
            time.sleep(0.2)
        yield SimpleNamespace(queue=queue, log=log)
    finally:
        stop(process, timeout=20)


@contextmanager
def on_default(wrapper):
    """Run the block's ORM and tenancy code (``connection``, ``tenant_context``) on ``wrapper``, a
    connection made by hand, as ``connections["default"]``; the previous one is back afterwards."""
    saved = connections[DEFAULT_DB_ALIAS]
    connections[DEFAULT_DB_ALIAS] = wrapper
    try:
        yield wrapper
    finally:
        connections[DEFAULT_DB_ALIAS] = saved


@pytest.fixture
def committed(django_db_blocker):
    """``with committed(): ...``: ORM code on a connection of its own, in autocommit, so it is committed.

    A test marked ``django_db`` runs inside a transaction that is rolled back; rows the app
    server changed must be read and put back outside of it. Not inside a Playwright
    ``sync_playwright()`` block: Django refuses ORM calls while an event loop is running.
    """

    @contextmanager
    def own_connection():
        fresh = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with on_default(fresh), django_db_blocker.unblock():
                yield
        finally:
            fresh.close()

    return own_connection


@contextmanager
def sign_ins_put_back(committed, slug: str, email: str):
    """``with sign_ins_put_back(committed, "alpha", "admin@alpha.test"):`` a browser signing in through
    the app server commits a session and the person's last sign-in: both are put back after the block."""
    from django.contrib.sessions.models import Session
    from django_tenants.utils import tenant_context

    from accounts.models import User
    from tenants.models import Agency

    with committed():
        agency = Agency.objects.get(slug=slug)
        with tenant_context(agency):
            last_login = User.objects.get(email=email).last_login
            sessions = set(Session.objects.values_list("session_key", flat=True))
    yield
    with committed(), tenant_context(agency):
        User.objects.filter(email=email).update(last_login=last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


# --- PgBouncer in transaction-pooling mode -----------------------------------------------------------

PGBOUNCER = "/usr/sbin/pgbouncer"  # Debian package `pgbouncer` (`make pgbouncer` installs it)


@dataclass
class PgBouncer:
    port: int
    log: Path

    def settings_dict(self, settings_dict: dict) -> dict:
        """A copy of Django connection settings that reaches the same database through PgBouncer."""
        routed = {**settings_dict, "HOST": "127.0.0.1", "PORT": str(self.port), "CONN_MAX_AGE": 0,
                  "OPTIONS": dict(settings_dict.get("OPTIONS") or {}), "TEST": dict(settings_dict.get("TEST") or {})}
        return routed


@contextmanager
def pgbouncer_server(settings_dict: dict, *, pool_size: int = 2):
    """A real PgBouncer, ``pool_mode = transaction`` with ``pool_size`` server connections per
    database and user (2: agencies really share them), in front of ``settings_dict``'s server.
    PgBouncer refuses to run as root: as root it runs as ``postgres``, in a folder of its own."""
    import shutil
    import tempfile

    if not os.path.exists(PGBOUNCER):
        pytest.skip("pgbouncer is not installed (make pgbouncer, or apt-get install pgbouncer)")
    host = settings_dict.get("HOST") or "127.0.0.1"  # a socket directory works too
    upstream = f"host={host} port={settings_dict.get('PORT') or 5432}"
    user = settings_dict.get("USER") or "postgres"
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="caravan-pgbouncer-"))
    if os.geteuid() == 0:
        shutil.chown(log_dir, "postgres")
    ini, users, log = log_dir / "pgbouncer.ini", log_dir / "userlist.txt", log_dir / "pgbouncer.log"
    users.write_text(f'"{user}" "{settings_dict.get("PASSWORD") or ""}"\n')
    ini.write_text(f"""[databases]
* = {upstream}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
admin_users = {user}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
server_lifetime = 3600
ignore_startup_parameters = extra_float_digits,options
logfile = {log}
""")
    for path in (ini, users):
        path.chmod(0o644)
    command = [PGBOUNCER, str(ini)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, cwd=log_dir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, log, "pgbouncer", timeout=20)
        yield PgBouncer(port=port, log=log)
    finally:
        stop(process, timeout=10)
        shutil.rmtree(log_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer(django_db_setup):
    """PgBouncer in transaction mode (pool of 2) in front of the test database, for the session."""
    with pgbouncer_server(connection.settings_dict) as server:
        yield server


# --- A streaming replica (PostgreSQL's own replication) ----------------------------------------------

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


@contextmanager
def streaming_replica_cluster(source: dict):
    """A primary and a hot standby streaming from it (``pg_basebackup -R``), made with the machine's
    PostgreSQL binaries (``PG_BIN``) on free ports in a folder of their own; the primary starts as
    a copy of ``source``'s database (pg_dump | psql). Yields their connection settings (HOST,
    PORT, NAME, USER). As root, the servers run as ``postgres``."""
    import shutil
    import tempfile

    import psycopg

    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN} (set PG_BIN)")
    major = subprocess.run([PG_BIN / "pg_config", "--version"], capture_output=True, text=True).stdout.split()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        server_major = int(cursor.fetchone()[0]) // 10000
    if not major or int(float(major[1])) != server_major:
        pytest.skip(f"{PG_BIN} is PostgreSQL {major[1:2]}, the test database's server is {server_major}")
    root = Path(tempfile.mkdtemp(prefix="caravan-replica-"))
    as_postgres = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]

    def run(*command, user=True, **kwargs):
        result = subprocess.run([*(as_postgres if user else []), *map(str, command)], capture_output=True,
                                timeout=180, **kwargs)
        if result.returncode:
            pytest.fail(f"{command[0]} failed:\n{result.stderr.decode(errors='replace')[-3000:]}")
        return result

    name, user = source["NAME"], "postgres"
    ports = {"primary": free_port(), "standby": free_port()}
    started = []

    def start(role: str):
        run(PG_BIN / "pg_ctl", "-D", root / role, "-l", root / f"{role}.log", "-w", "-t", "60", "start", "-o",
            f"-p {ports[role]} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_wal_senders=4")
        started.append(role)

    try:
        run(PG_BIN / "initdb", "-D", root / "primary", "-U", user, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        start("primary")
        with psycopg.connect(host="127.0.0.1", port=ports["primary"], user=user, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        source_host = source.get("HOST") or "127.0.0.1"
        dump = run(PG_BIN / "pg_dump", "-h", source_host, "-p", source.get("PORT") or 5432,
                   "-U", source.get("USER") or user, "--no-owner", "-d", name, user=False,
                   env={**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""})
        run(PG_BIN / "psql", "-h", "127.0.0.1", "-p", ports["primary"], "-U", user, "-q", "-v", "ON_ERROR_STOP=1",
            "-d", name, user=False, input=dump.stdout)
        run(PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", ports["primary"], "-U", user, "-D", root / "standby",
            "-R", "-X", "stream", "-c", "fast")
        start("standby")
        yield SimpleNamespace(
            primary={"HOST": "127.0.0.1", "PORT": str(ports["primary"]), "NAME": name, "USER": user, "PASSWORD": ""},
            replica={"HOST": "127.0.0.1", "PORT": str(ports["standby"]), "NAME": name, "USER": user, "PASSWORD": ""})
    finally:
        for role in reversed(started):
            subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(root / role), "-m", "immediate", "-w",
                            "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def replica_caught_up(cluster, timeout: float = 30) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    import psycopg

    def lsn(settings: dict, query: str) -> str:
        with psycopg.connect(host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
                             dbname=settings["NAME"], autocommit=True) as conn:
            return conn.execute(query).fetchone()[0]

    target = lsn(cluster.primary, "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + timeout
    while lsn(cluster.replica, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") is not True:
        if time.monotonic() > deadline:
            pytest.fail(f"the standby did not catch up within {timeout} s")
        time.sleep(0.05)
