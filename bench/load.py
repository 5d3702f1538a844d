"""Load spread over many agencies (issue 17): a real gunicorn, requests for the screen pop (API)
and the dashboard (page) each to a random agency, directly and through PgBouncer.

    .venv/bin/python -m infra.devenv bench scale     # first: makes the scale-NNNN agencies
    .venv/bin/python -m infra.devenv bench load      # BENCH_AGENCIES=100,1000 by default

For each spread (the first N scale agencies) and each database path (direct; PgBouncer in
transaction pooling with DATABASE_POOLING=transaction), it prints p50/p95 of the screen pop and
of the dashboard (median and range over BENCH_RUNS runs), requests per second, the resident memory
of each gunicorn worker after the run, and the server connections the web tier held (direct:
pg_stat_activity; PgBouncer: its server pool, SHOW POOLS).
"""
import http.client
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _server import app_server, percentile  # noqa: E402

SPREADS = [int(n) for n in os.environ.get("BENCH_AGENCIES", "100,1000").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
POOL = int(os.environ.get("BENCH_POOL_SIZE", "4"))


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def credentials(count: int) -> list[dict]:
    """For each of the first ``count`` scale agencies: host, a session cookie and an API token of
    its admin, and its customers' phone numbers."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django_tenants.utils import tenant_context
    from accounts.scopes import all_scopes
    from accounts.tokens import token_create

    from accounts.models import User
    from tenants.models import Agency

    out = []
    for agency in Agency.objects.filter(slug__startswith="scale-").order_by("slug")[:count]:
        with tenant_context(agency):
            user = User.objects.get(email=f"admin@{agency.slug}.test")
            if not user.has_usable_password() or not user.is_active:
                user.set_password("bench-Load-pass-1")
                user.is_active = True
                user.save()
            session = SessionStore()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session.create()
            _token, secret = token_create(user=user, name="bench", scopes=all_scopes())
            with connection.cursor() as cursor:
                cursor.execute("SELECT number FROM crm_phone LIMIT 50")
                phones = [row[0] for row in cursor.fetchall()]
        out.append({"host": f"{agency.slug}.{settings.PLATFORM_DOMAIN}", "cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
                    "token": secret, "phones": phones or ["+8613800000000"]})
    connection.set_schema_to_public()
    return out


def drive(port: int, agencies: list[dict], seconds: float) -> dict:
    """CONCURRENCY threads, each on one keep-alive connection, alternating screen pops and
    dashboards, every request to a random agency."""
    latencies = {"pop": [], "dashboard": []}
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work(slot: int):
        rng = random.Random(slot)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = {"pop": [], "dashboard": []}
        seen: dict[int, int] = {}
        n = 0
        while time.monotonic() < deadline:
            agency = rng.choice(agencies)
            kind = "pop" if n % 2 == 0 else "dashboard"
            n += 1
            if kind == "pop":
                path = f"/api/v1/screen-pop/?phone={rng.choice(agency['phones']).replace('+', '%2B')}"
                headers = {"Host": agency["host"], "Authorization": f"Token {agency['token']}"}
            else:
                path, headers = "/", {"Host": agency["host"], "Cookie": agency["cookie"]}
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            mine[kind].append((time.perf_counter() - started) * 1000)
            seen[status] = seen.get(status, 0) + 1
        conn.close()
        with lock:
            for key in latencies:
                latencies[key] += mine[key]
            for key, value in seen.items():
                statuses[key] = statuses.get(key, 0) + value

    threads = [threading.Thread(target=work, args=(i,)) for i in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(len(v) for v in latencies.values())
    return {"pop": latencies["pop"], "dashboard": latencies["dashboard"], "statuses": statuses,
            "rps": total / seconds}


def worker_rss_mb(master_pid: int) -> list[float]:
    children = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
    sizes = []
    for pid in children:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        except FileNotFoundError:
            pass
    return sorted(sizes)


def gunicorn_master(port: int) -> int | None:
    out = subprocess.run(["pgrep", "-f", f"gunicorn caravan.wsgi --bind 127.0.0.1:{port}"],
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def server_connections(database: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                       [database])
        return cursor.fetchone()[0]


@contextmanager
def environment(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.db import connection

    from tenants.models import Agency
    from tests.servers import pgbouncer_server

    present = Agency.objects.filter(slug__startswith="scale-").count()
    spreads = [n for n in SPREADS if n <= present]
    if not spreads:
        print(f"Only {present} scale agencies: run bench/scale.py first (BENCH_SIZES={max(SPREADS)}).")
        return 1
    database = connection.settings_dict["NAME"]
    base_url = os.environ["DATABASE_URL"]
    print(f"Load bench: {Agency.objects.agencies().count()} agencies present, spreads {spreads}; gunicorn "
          f"{WORKERS} sync workers, {CONCURRENCY} client threads, {SECONDS:.0f} s x {RUNS} runs per case; "
          f"PgBouncer transaction pooling, pool size {POOL}; {machine()}", flush=True)
    agencies = credentials(max(spreads))
    try:
        bouncer_cm = pgbouncer_server(connection.settings_dict, pool_size=POOL)
        bouncer = bouncer_cm.__enter__()
    except BaseException as exc:  # pytest.skip outside pytest: PgBouncer not installed
        print(f"PgBouncer not available ({exc}); measuring direct connections only.")
        bouncer_cm, bouncer = nullcontext(), None
    rows = []
    try:
        paths = [("direct", {})]
        if bouncer:
            via = base_url.rsplit("@", 1)[0] + f"@127.0.0.1:{bouncer.port}/{database}"
            paths.append(("pgbouncer", {"DATABASE_URL": via, "DATABASE_POOLING": "transaction", "DB_CONN_MAX_AGE": "0"}))
        for spread in spreads:
            for label, env in paths:
                runs = []
                with environment(**env), app_server(workers=WORKERS, probe_host=agencies[0]["host"]) as server:
                    master = gunicorn_master(server.port)
                    drive(server.port, agencies[:spread], 3)  # warm-up
                    for _ in range(RUNS):
                        result = drive(server.port, agencies[:spread], SECONDS)
                        result["connections"] = (bouncer_servers(bouncer) if label == "pgbouncer"
                                                 else server_connections(database))
                        runs.append(result)
                    rss = worker_rss_mb(master) if master else []
                pop95 = [percentile(r["pop"], 95) for r in runs]
                dash95 = [percentile(r["dashboard"], 95) for r in runs]
                pop50 = [percentile(r["pop"], 50) for r in runs]
                dash50 = [percentile(r["dashboard"], 50) for r in runs]
                rps = [r["rps"] for r in runs]
                statuses = {}
                for r in runs:
                    for k, v in r["statuses"].items():
                        statuses[k] = statuses.get(k, 0) + v
                conns = max(r["connections"] for r in runs)
                print(f"\n{spread} agencies, {label}: statuses {statuses}", flush=True)
                print(f"  screen pop  p50 {med(pop50)} ms, p95 {med(pop95)} ms", flush=True)
                print(f"  dashboard   p50 {med(dash50)} ms, p95 {med(dash95)} ms", flush=True)
                print(f"  throughput  {med(rps)} req/s; worker RSS {', '.join(f'{m:.0f}' for m in rss)} MB; "
                      f"server connections held {conns}; {machine()}", flush=True)
                rows.append((spread, label, statistics.median(pop95), statistics.median(dash95),
                             statistics.median(rps), max(rss) if rss else 0, conns))
    finally:
        bouncer_cm.__exit__(None, None, None)
    print("\nagencies | path      | pop p95 ms | dashboard p95 ms | req/s | max worker RSS MB | server conns")
    for spread, label, pop, dash, rps, rss, conns in rows:
        print(f"{spread:8d} | {label:9s} | {pop:10.1f} | {dash:16.1f} | {rps:5.0f} | {rss:17.0f} | {conns:12d}")
    return 0


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} (range {min(values):.1f}-{max(values):.1f})"


def bouncer_servers(bouncer) -> int:
    """Server connections PgBouncer holds for all pools (SHOW POOLS: sv_active + sv_idle + sv_used)."""
    import psycopg

    # The admin console speaks the simple query protocol only: a client-side-binding cursor.
    with psycopg.connect(host="127.0.0.1", port=bouncer.port, user="postgres", dbname="pgbouncer",
                         autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        cursor = conn.cursor()
        cursor.execute("SHOW POOLS")
        names = [c.name for c in cursor.description]
        total = 0
        for row in cursor.fetchall():
            data = dict(zip(names, row))
            total += sum(int(data.get(k) or 0) for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"))
    return total


if __name__ == "__main__":
    sys.exit(main())
