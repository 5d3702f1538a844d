"""The cost of a request (issue 22): the screen pop against a bare Django JSON view, same gunicorn.

    .venv/bin/python -m infra.devenv bench request_cost

Gunicorns started as production starts them (``infra.entrypoint.command("web")``: sync workers,
WEB_WORKERS of them (3), gunicorn's access log as the entry point sets it (off unless WEB_ACCESS_LOG=1), prometheus_client's multiprocess directory), bound to
127.0.0.1: one serving the real app (``caravan.wsgi``), one the bare anchor (``bench/_bare_json.py``:
a JSON view, no middleware, no database, the project's settings and apps otherwise). For each agency
size in BENCH_COST_SIZES (1000,100000 customers; the agencies of bench/customers.py, made if missing),
wrk (``apt install wrk``; 2 threads, BENCH_CONNECTIONS (8) keep-alive connections, BENCH_SECONDS (10)
per run) asks the screen pop (``GET /api/v1/screen-pop/?phone=``, known numbers in mixed formats, a
call-center token) and then the bare view, alternating, BENCH_RUNS (3) times: req/s, p50, p99 — the
median of the runs with the range — and the ratios (throughput %, p99 ×). wrk runs on the same two
cores as the servers, PostgreSQL and Redis.

Memory, after the load: each gunicorn worker's RSS and PSS (``/proc/<pid>/smaps_rollup``), real app
against bare view; and a Celery worker (prefork, one child, after it ran one task): the project's
(``infra.entrypoint.command("worker")``, task ``caravan.leases_watchdog``) against a bare Celery app
without Django (``bench/_bare_celery.py``), PSS of the main process and its child.

A third gunicorn, same arguments, serves the second anchor, ``bench/_bare_sql.py``: the screen pop's database
work and nothing else (host → schema from a dict, the token's, the screen pop's and the access entry's statements,
prepared, on one psycopg connection a worker; no middleware, DRF, fences, log line or metrics). Asked in the same
runs; printed as its share of the bare view's throughput and the screen pop's share of its: what the work itself
costs, and what the framework and the fences add to it.

Prints the configuration, the machine's load at each run, and a summary with the goals (throughput
≥ 25 % of the bare view's, p99 ≤ 3× its p99, web worker RSS ≤ 120 MB).

BENCH_APP_ROOT=<another checkout> serves the real app (and the project's Celery worker) from that checkout,
started as its own infra/entrypoint.py starts it: before/after in one session (docs/performance.md).
BENCH_GUNICORN_ARGS adds gunicorn arguments to both servers (e.g. ``--worker-class gthread --threads 4``).
"""
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

SIZES = [int(n) for n in os.environ.get("BENCH_COST_SIZES", "1000,100000").split(",") if n]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def main() -> int:
    from bench._server import django_for_wrk

    if not django_for_wrk():
        return 1
    from bench.customers import SLUG, Bench
    from infra.entrypoint import DEFAULTS

    workers = os.environ.get("WEB_WORKERS") or DEFAULTS["WEB_WORKERS"]
    if os.environ.get("BENCH_APP_ROOT"):
        print(f"The real app served from {os.environ['BENCH_APP_ROOT']} (BENCH_APP_ROOT)")
    print(f"The cost of a request: gunicorn as infra/entrypoint.py starts it ({workers} sync workers, 1 thread "
          f"each, gunicorn access log {'on' if os.environ.get('WEB_ACCESS_LOG') == '1' else 'off'}), real app vs bare JSON view, alternating; load generator wrk -t 2 -c {CONNECTIONS} "
          f"-d {SECONDS}s on the same {os.cpu_count()} cores; {RUNS} runs per size; sizes {SIZES}; {load()}",
          flush=True)
    base = Bench()
    rows, results = [], {}
    with web_server("caravan.wsgi", "/healthz") as app, web_server("bench._bare_json:application", "/") as bare, \
            web_server("bench._bare_sql:application", "/") as floor:
        for size in SIZES:
            base.prepare(slug=SLUG if size == 100000 else f"{SLUG}-{size}", people=size)
            host = f"{base.agency.slug}.localhost"
            paths = ["/api/v1/screen-pop/?" + urlencode({"phone": n}) for n in base.numbers]
            headers = {"Host": host, "Authorization": f"Token {base.token}", "Accept-Language": "en"}
            first = _get(app.port, paths[0], headers)
            if first != 200:
                print(f"The screen pop answered {first}; see {app.log}")
                return 1
            if _get(floor.port, paths[0], headers) != 200:
                print(f"The database-work anchor did not answer 200; see {floor.log}")
                return 1
            for target in (app, bare, floor, app, bare, floor):  # warm every worker up (a first request loads the views)
                wrk(target.port, headers, paths, seconds=3)
            runs = {"app": [], "bare": [], "floor": []}
            for run in range(RUNS):
                for name, target in (("app", app), ("bare", bare), ("floor", floor)):
                    result = wrk(target.port, headers, paths, seconds=SECONDS)
                    runs[name].append(result)
                    print(f"  {size:>7,} customers, run {run + 1}, {name:5s}: {result['rps']:8,.0f} req/s  "
                          f"p50 {result['p50']:6.2f} ms  p99 {result['p99']:6.2f} ms  "
                          f"non-2xx {result['non_2xx']} {result['errors']}  {load()}", flush=True)
            results[size] = runs
        memory = {"app": worker_memory(app.pid), "bare": worker_memory(bare.pid)}
    celery = {"app": celery_memory("app"), "bare": celery_memory("bare")}

    print("\nSummary (median of the runs, range in brackets):")
    print(f"  {'customers':>9}  {'screen pop req/s':>24}  {'bare req/s':>24}  {'%':>5}  {'p50 ms pop/bare':>17}  "
          f"{'p99 ms pop/bare':>17}  {'p99 x':>5}")
    for size, runs in results.items():
        a, b = runs["app"], runs["bare"]
        pct = [x["rps"] / y["rps"] * 100 for x, y in zip(a, b, strict=True)]
        times = [x["p99"] / y["p99"] for x, y in zip(a, b, strict=True)]
        print(f"  {size:>9,}  {_med(a, 'rps', ',.0f'):>24}  {_med(b, 'rps', ',.0f'):>24}  "
              f"{statistics.median(pct):5.1f}  {_m(a, 'p50'):>8.2f}/{_m(b, 'p50'):<8.2f}  "
              f"{_m(a, 'p99'):>8.2f}/{_m(b, 'p99'):<8.2f}  {statistics.median(times):5.1f}")
        rows.append((size, statistics.median(pct), statistics.median(times)))
    print("  The screen pop's database work alone (bench/_bare_sql.py: the same three statements, prepared, one psycopg\n"
          "  connection a worker, no middleware, DRF, fences, log or metrics), same runs:")
    for size, runs in results.items():
        a, b, f = runs["app"], runs["bare"], runs["floor"]
        of_bare = statistics.median(x["rps"] / y["rps"] * 100 for x, y in zip(f, b, strict=True))
        pop_of = statistics.median(x["rps"] / y["rps"] * 100 for x, y in zip(a, f, strict=True))
        print(f"  {size:>9,}  {_med(f, 'rps', ',.0f'):>24} req/s = {of_bare:.1f} % of the bare view's; the screen pop "
              f"{pop_of:.1f} % of it; p99 {_m(f, 'p99'):.2f} ms = {statistics.median(x['p99'] / y['p99'] for x, y in zip(f, b, strict=True)):.1f} x the bare view's")
    for name in ("app", "bare"):
        m = memory[name]
        print(f"  web worker, {name:4s}: RSS {_mb(m['rss'])}, PSS {_mb(m['pss'])} (median of {len(m['rss'])} "
              f"workers, range {min(m['rss']) / 1024:.0f}-{max(m['rss']) / 1024:.0f} MB RSS); "
              f"master RSS {m['master_rss'] / 1024:.0f} MB")
    for name in ("app", "bare"):
        c = celery[name]
        print(f"  Celery worker, {name:4s} (prefork, 1 child, after a task): PSS main {c['main_pss'] / 1024:.0f} MB + "
              f"child {c['child_pss'] / 1024:.0f} MB = {(c['main_pss'] + c['child_pss']) / 1024:.0f} MB; "
              f"RSS main {c['main_rss'] / 1024:.0f} MB, child {c['child_rss'] / 1024:.0f} MB")
    web_rss = statistics.median(memory["app"]["rss"]) / 1024
    print("Goals:")
    for size, pct, times in rows:
        print(f"  {size:>9,} customers: throughput {pct:.1f} % of the bare view's (goal >= 25 %): "
              f"{'yes' if pct >= 25 else 'NO'}; p99 {times:.1f} x the bare view's (goal <= 3): "
              f"{'yes' if times <= 3 else 'NO'}")
    print(f"  web worker RSS {web_rss:.0f} MB (goal <= 120 MB): {'yes' if web_rss <= 120 else 'NO'}   {load()}")
    return 0


def _m(runs, key):
    return statistics.median(r[key] for r in runs)


def _med(runs, key, fmt):
    values = [r[key] for r in runs]
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def _mb(kib: list[int]) -> str:
    return f"{statistics.median(kib) / 1024:.0f} MB"


# --- servers ---------------------------------------------------------------------------------------


class Server:
    def __init__(self, port, pid, log):
        self.port, self.pid, self.log = port, pid, log


@contextmanager
def web_server(app: str, probe: str):
    """gunicorn with production's arguments (infra.entrypoint), serving ``app`` on 127.0.0.1."""
    from bench._server import _status, free_port, stop
    from infra.entrypoint import command

    port = free_port()
    root = ROOT
    if app == "caravan.wsgi" and os.environ.get("BENCH_APP_ROOT"):
        # The real app from another checkout (an older commit: before/after in one session), started as
        # that checkout's own infra/entrypoint.py starts it; the bare view stays this checkout's.
        root = Path(os.environ["BENCH_APP_ROOT"]).resolve()
        spec = importlib.util.spec_from_file_location("bench_app_entrypoint", root / "infra" / "entrypoint.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        command = module.command
    with tempfile.TemporaryDirectory(prefix="bench-cost-metrics-") as metrics:
        env = {**os.environ, "BIND": "127.0.0.1", "PORT": str(port), "PLATFORM_PORT": str(port),
               "STATICFILES_MANIFEST": "0", "DJANGO_SETTINGS_MODULE": "caravan.settings",
               "PROMETHEUS_MULTIPROC_DIR": metrics, "PYTHONPATH": f"{root}{os.pathsep}{root / 'platform'}"}
        argv = [app if part == "caravan.wsgi" else part for part in command("web", env)]
        argv += os.environ.get("BENCH_GUNICORN_ARGS", "").split()  # to try another configuration
        log = Path(tempfile.mkstemp(prefix="bench-cost-gunicorn-", suffix=".log")[1])
        with open(log, "wb") as out:
            process = subprocess.Popen(argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while _status(port, probe, "localhost") != 200:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn ({app}) did not start:\n{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.2)
            yield Server(port, process.pid, log)
        finally:
            stop(process)
            log.unlink(missing_ok=True)


def _get(port: int, path: str, headers: dict) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status


def wrk(port: int, headers: dict, paths: list[str], *, seconds: int) -> dict:
    """wrk over CONNECTIONS keep-alive connections: req/s, p50 and p99 in ms, non-2xx count, socket errors."""
    from bench._server import _wrk

    result = _wrk(port, headers, paths, concurrency=CONNECTIONS, seconds=seconds)
    return {"rps": result["rps"], "p50": result["p50_ms"], "p99": result["p99_ms"], "non_2xx": result["non_2xx"],
            "errors": result["socket_errors"]}


# --- memory ----------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _kib(pid: int, path: str, field: str) -> int:
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def worker_memory(master: int) -> dict:
    pids = _children(master)
    return {"rss": [_kib(p, "status", "VmRSS") for p in pids], "pss": [_kib(p, "smaps_rollup", "Pss") for p in pids],
            "master_rss": _kib(master, "status", "VmRSS")}


def celery_memory(which: str) -> dict:
    """A Celery worker (prefork, 1 child) on a queue of its own, after one task ran: PSS and RSS."""
    from celery import Celery

    from bench._server import stop
    from infra.entrypoint import command

    queue = f"bench-cost-{which}-{os.getpid()}"
    env = {**os.environ, "CELERY_QUEUE": queue, "WORKER_CONCURRENCY": "1", "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "caravan.settings"}
    if which == "bare":
        del env["DJANGO_SETTINGS_MODULE"]  # else Celery's Django fix-up sets Django up in the bare app too
    if which == "app":
        argv, task = command("worker", env), "caravan.leases_watchdog"
    else:
        argv, task = [sys.executable, "-m", "celery", "-A", "bench._bare_celery", "worker", "--loglevel", "WARNING",
                      "--concurrency", "1"], "bare.ping"
    argv += ["--pool", "prefork", "--queues", queue, "--without-gossip", "--without-mingle", "--without-heartbeat"]
    root = Path(os.environ.get("BENCH_APP_ROOT") or ROOT).resolve() if which == "app" else ROOT
    env["PYTHONPATH"] = f"{root}{os.pathsep}{root / 'platform'}"
    log = Path(tempfile.mkstemp(prefix=f"bench-cost-celery-{which}-", suffix=".log")[1])
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        client = Celery(broker=os.environ["REDIS_URL"], backend=os.environ["REDIS_URL"])
        client.send_task(task, queue=queue).get(timeout=120)
        time.sleep(1)
        children = _children(process.pid)
        child = children[0] if children else process.pid
        return {"main_pss": _kib(process.pid, "smaps_rollup", "Pss"), "child_pss": _kib(child, "smaps_rollup", "Pss"),
                "main_rss": _kib(process.pid, "status", "VmRSS"), "child_rss": _kib(child, "status", "VmRSS")}
    finally:
        stop(process, timeout=20)  # a Celery worker's warm shutdown
        log.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
