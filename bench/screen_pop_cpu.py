"""Where a screen pop's CPU goes, in process (issue 22): the request's Python, layer by layer and piece by piece.

    .venv/bin/python -m infra.devenv bench screen_pop_cpu

No server, no socket: each WSGI application is called directly, ``time.process_time()`` around BENCH_CPU_CALLS
(2,000) calls, BENCH_RUNS (5) runs, the median with the range, on the agency ``bench-crm-1000`` of
bench/customers.py (made if missing), known numbers in mixed formats, a call-center token. Each application
runs in its own process (``bench/_bare_json.py`` and ``bench/_bare_sql.py`` rewrite the settings when imported):

- ``bare``: the bare JSON view (bench/_bare_json.py), the anchor of bench/request_cost.py;
- ``floor``: the screen pop's database work alone (bench/_bare_sql.py), its second anchor;
- ``app``: the screen pop through ``caravan.wsgi``, every middleware of the token chain, DRF and the view;
- ``app, view answers {}``: the same request with the view's ``get`` replaced by ``Response({})`` (the framework,
  the fences and the token's lookup);
- ``app, view answers {}, token in memory``: the same with ``token_authenticate`` answering a token read once
  (the framework and the fences alone).

For each application it also prints what Python's garbage collector took of that CPU (``gc.callbacks`` around every
collection during the timed runs, the process's thresholds as it runs: ``caravan.wsgi`` freezes what is loaded), and
the same application again with the youngest generation's threshold raised from Python's default (700) to
BENCH_GC_THRESHOLD (10,000): whether collecting less often would pay.

Then the pieces of the screen pop, called on their own in one process: the page's selector (model instances)
and the API's (``screen_pop_data``), its statement alone, ``token_authenticate``, ``access_record``, the host's
cache entry (Redis), the connection's health check (``SET search_path``) and one request log line.
docs/performance.md ("The cost of a request", seventh pass) reads them against the CPU a request may spend for
the screen pop to reach 25 % of the bare view's throughput on two cores.
"""
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import time
from urllib.parse import urlencode

CALLS = int(os.environ.get("BENCH_CPU_CALLS", "2000"))
GC_THRESHOLD = int(os.environ.get("BENCH_GC_THRESHOLD", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SIZE = 1000
APPS = {"bare": "bench._bare_json", "floor": "bench._bare_sql", "app": "caravan.wsgi",
        "app, view answers {}": "caravan.wsgi", "app, view answers {}, token in memory": "caravan.wsgi"}


def _setup():
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ms (range {min(values):.3f}-{max(values):.3f})"


def _cpu_per_call(call, count: int, collected: list | None = None) -> list[float]:
    """CPU ms a call, per run; ``collected``, if given, is set to [CPU s in collections, collections] over the runs."""
    for i in range(min(200, count)):  # warm up: a first call loads the views, prepares the statements
        call(i)
    runs = []
    if collected is not None:
        collected[:] = [0.0, 0]
        began = [0.0]

        def timed(phase: str, _info: dict) -> None:
            if phase == "start":
                began[0] = time.process_time()
            else:
                collected[0] += time.process_time() - began[0]
                collected[1] += 1

        gc.callbacks.append(timed)
    for _ in range(RUNS):
        started = time.process_time()
        for i in range(count):
            call(i)
        runs.append((time.process_time() - started) / count * 1000)
    if collected is not None:
        gc.callbacks.remove(timed)
    return runs


def measure_app(name: str, case: dict, *, gc_threshold: int | None = None) -> dict:
    """CPU a call of one WSGI application (in this process, which serves nothing else): ``runs`` (ms a call),
    ``gc`` (ms a call in collections) and ``collections`` (a call)."""
    _setup()
    from django.db import connection

    connection.close()
    if name.startswith("app, view answers {}"):
        from rest_framework.response import Response

        from crm.customers import api

        api.ScreenPopView.get = lambda self, request: Response({})
    if name.endswith("token in memory"):
        from django_tenants.utils import tenant_context

        from accounts import authentication, tokens
        from tenants.models import Agency

        with tenant_context(Agency.objects.get(slug=case["slug"])):
            token = tokens.token_authenticate(case["token"])
            token.user.role  # noqa: B018  (loaded before the runs)
        connection.close()
        authentication.token_authenticate = lambda secret: token
    application = __import__(APPS[name], fromlist=["application"]).application
    path = "/" if name == "bare" else "/api/v1/screen-pop/"
    queries = [urlencode({"phone": n}) for n in case["numbers"]]
    statuses = []

    def call(i: int) -> None:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": queries[i % len(queries)],
                   "SERVER_NAME": case["host"], "SERVER_PORT": "80", "HTTP_HOST": case["host"],
                   "HTTP_AUTHORIZATION": f"Token {case['token']}", "HTTP_ACCEPT_LANGUAGE": "en",
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
                   "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.multithread": False,
                   "wsgi.multiprocess": True}
        body = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(body)
        body.close()

    call(0)
    if not statuses[-1].startswith("200"):
        raise SystemExit(f"{name} answered {statuses[-1]}")
    if gc_threshold:
        gc.set_threshold(gc_threshold, *gc.get_threshold()[1:])
    collected = []
    runs = _cpu_per_call(call, CALLS, collected)
    calls = CALLS * RUNS
    return {"runs": runs, "gc": collected[0] / calls * 1000, "collections": collected[1] / calls}


def measure_pieces(case: dict) -> dict[str, list[float]]:
    _setup()
    import logging

    from django.core.cache import cache
    from django.db import connection
    from django_tenants.utils import tenant_context

    from accounts.tokens import token_authenticate
    from caravan.db.prepared import execute_prepared
    from crm.customers import screen_pop as parts, selectors
    from crm.customers.normalize import phone_e164
    from crm.privacy.services import access_record
    from tenants.models import Agency

    agency = Agency.objects.get(slug=case["slug"])
    numbers = case["numbers"]
    found = {}
    with tenant_context(agency):
        user = token_authenticate(case["token"]).user
        e164 = [phone_e164(n, agency.default_region) for n in numbers]
        sql = selectors._screen_pop_sql(parts.parts())
        log = logging.getLogger("caravan.request")

        def statement(i):
            with connection.cursor() as cursor:
                execute_prepared(cursor, sql, [e164[i % len(e164)]])
                cursor.fetchone()

        def health_check(_i):
            connection.search_path_set_schemas = None  # as at a request's start: the check sets the path
            connection.health_check_done = False
            connection.close_if_health_check_failed()

        pieces = {
            "screen_pop (the page's: model instances)": lambda i: selectors.screen_pop(
                number=numbers[i % len(numbers)]),
            "screen_pop_data (the API's: plain data)": lambda i: selectors.screen_pop_data(
                number=numbers[i % len(numbers)]),
            "its statement alone (Django's cursor)": statement,
            "token_authenticate": lambda _i: token_authenticate(case["token"]),
            "access_record (INSERT, committed)": lambda _i: access_record(
                user=user, what="card_view", via="api", customer_id=1, detail="screen pop"),
            "the host's cache entry (Redis GET)": lambda _i: cache.get(f"tenancy:host:{case['host']}"),
            "health check (SET search_path)": health_check,
            "a request log line": lambda _i: log.info("GET %s status %s in %.1f ms", "api:screen_pop", 200, 1.0),
        }
        for label, call in pieces.items():
            found[label] = _cpu_per_call(call, CALLS)
    return found


def main() -> int:
    if len(sys.argv) > 1:  # a child: one application (or the pieces), its runs as JSON on stdout's last line
        case = json.loads(os.environ["BENCH_CPU_CASE"])
        gc_threshold = int(sys.argv[2]) if len(sys.argv) > 2 else None
        result = measure_pieces(case) if sys.argv[1] == "pieces" else measure_app(sys.argv[1], case,
                                                                                 gc_threshold=gc_threshold)
        print(json.dumps(result))
        return 0
    _setup()
    from bench.customers import SLUG, Bench

    base = Bench()
    base.prepare(slug=f"{SLUG}-{SIZE}", people=SIZE)
    case = {"slug": base.agency.slug, "host": f"{base.agency.slug}.localhost", "token": base.token,
            "numbers": base.numbers}
    load = os.getloadavg()
    print(f"Screen pop CPU in process: agency {case['slug']} ({SIZE:,} customers), {CALLS:,} calls x {RUNS} runs "
          f"a row, each application in its own process, {os.cpu_count()} cores, load {load[0]:.2f}/{load[1]:.2f}; "
          f"median CPU a call (range over the runs)", flush=True)
    env = {**os.environ, "BENCH_CPU_CASE": json.dumps(case)}

    def child(*args: str):
        done = subprocess.run([sys.executable, "-m", "bench.screen_pop_cpu", *args], env=env, capture_output=True,
                              text=True)
        if done.returncode:
            raise SystemExit(f"{' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def app_line(label: str, found: dict) -> str:
        return (f"  {label:45s} {_median(found['runs'])}; garbage collector {found['gc']:.3f} ms a call "
                f"({found['collections']:.2f} collections)")

    for name in APPS:
        print(app_line(name, child(name)), flush=True)
    print(app_line(f"app, gc threshold {GC_THRESHOLD:,} (default {gc.get_threshold()[0]:,})",
                   child("app", str(GC_THRESHOLD))), flush=True)
    print("  the pieces, on their own:")
    for label, runs in child("pieces").items():
        print(f"  {label:45s} {_median(runs)}", flush=True)
    load = os.getloadavg()
    print(f"  load {load[0]:.2f}/{load[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
