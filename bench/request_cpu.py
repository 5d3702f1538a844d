"""Where the CPU of a small API call goes (issue 22): the screen pop under load, per process group.

    .venv/bin/python -m infra.devenv bench request_cpu

gunicorn as production starts it (``bench.request_cost.web_server``: ``infra.entrypoint.command("web")``),
the agency ``bench-crm-1000`` of bench/customers.py (made if missing). wrk (2 threads, 8 connections,
BENCH_SECONDS (10) a run, BENCH_RUNS (3) runs) asks the screen pop for known numbers; the CPU time (user +
system, ``/proc/<pid>/stat``) of every process on the machine is read before and after each run and summed
per group: the gunicorn workers, the PostgreSQL backends, Redis, wrk itself (its rusage as a child), and every
other process (anything else running shows there). Printed per request: the median of the runs with the range.

Then PostgreSQL's side of the request's statements: ``EXPLAIN (ANALYZE, SUMMARY)`` of the screen pop's one
statement and of the token's lookup on the same agency, BENCH_RUNS × 5 times each after six first ones,
planning and execution time (median, range): sent plainly, and as the app sends them on ``caravan.db.session``
since issue 22's fourth pass (``caravan.db.prepared``: prepared once per connection, then ``EXECUTE``).
"""
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from urllib.parse import urlencode

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
SLUG = "bench-crm-1000"
GROUPS = ("gunicorn", "postgres", "redis", "wrk", "other")


def cpu_by_group() -> dict[tuple[str, str], float]:
    """CPU seconds (user + system) of every live process, keyed by (group, pid)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline") as f:
                command = f.read().replace("\0", " ")
        except OSError:
            continue  # gone meanwhile
        name = stat.split("(", 1)[1].rsplit(")", 1)[0]
        fields = stat.rsplit(")", 1)[1].split()
        group = ("gunicorn" if "gunicorn" in command else "postgres" if name.startswith("postgres")
                 else "redis" if name.startswith("redis") else "other")
        found[(group, pid)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main() -> int:
    from bench._server import django_for_wrk

    if not django_for_wrk():
        return 1
    from django.db import connection
    from django_tenants.utils import tenant_context

    from accounts.tokens import _lookup_sql
    from bench.customers import Bench
    from bench.request_cost import web_server
    from caravan.db.prepared import _numbered
    from crm.customers import screen_pop, selectors
    from crm.customers.normalize import phone_e164

    bench = Bench()
    bench.prepare(slug=SLUG, people=1000)
    host = f"{bench.agency.slug}.localhost"
    paths = ["/api/v1/screen-pop/?" + urlencode({"phone": n}) for n in bench.numbers[:500]]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\ni = 0\n"
                     "request = function()\n  i = i + 1\n  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n")
    connection.close()
    one, five, _ = os.getloadavg()
    print(f"CPU of a screen pop: gunicorn as infra/entrypoint.py starts it, wrk -t 2 -c 8 -d {SECONDS}s on the same "
          f"{os.cpu_count()} cores, {RUNS} runs, agency {SLUG}; load {one:.2f}/{five:.2f}", flush=True)
    per_request = defaultdict(list)
    rates = []
    with web_server("caravan.wsgi", "/healthz") as app:
        for run in range(RUNS):
            before, started = cpu_by_group(), time.monotonic()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(["wrk", "-t", "2", "-c", "8", "-d", f"{SECONDS}s", "-s", script.name,
                                  "-H", f"Host: {host}", "-H", f"Authorization: Token {bench.token}",
                                  "-H", "Accept-Language: en", f"http://127.0.0.1:{app.port}/"],
                                 capture_output=True, text=True, check=True).stdout
            after, wall = cpu_by_group(), time.monotonic() - started
            done = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, gone before the second reading of /proc
            rate = float(next(line for line in out.splitlines() if "Requests/sec" in line).split()[1])
            requests = rate * SECONDS
            groups = defaultdict(float)
            for key, seconds in after.items():
                groups[key[0]] += seconds - before.get(key, 0.0)
            groups["wrk"] = done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime
            rates.append(rate)
            line = ", ".join(f"{g} {groups[g] / requests * 1000:.2f} ms" for g in GROUPS)
            one, five, _ = os.getloadavg()
            print(f"  run {run + 1}: {rate:,.0f} req/s over {wall:.1f} s; CPU a request: {line}; load {one:.2f}", flush=True)
            for group in GROUPS:
                per_request[group].append(groups[group] / requests * 1000)
    os.unlink(script.name)

    plans = defaultdict(list)
    with tenant_context(bench.agency), connection.cursor() as cursor:
        number = phone_e164(bench.numbers[0], bench.agency.default_region)
        statements = {"screen pop": (selectors._screen_pop_sql(screen_pop.parts()), [number]),
                      "token lookup": (_lookup_sql()[0], ["not-a-token-hash"])}
        # As the app runs them (caravan.db.prepared): prepared once, then EXECUTE (its planning: 0 once kept).
        for n, (name, (sql, params)) in enumerate(list(statements.items())):
            text, arguments = _numbered(sql)
            cursor.execute(f"PREPARE bench_{n} AS {text}", [])
            statements[f"{name}, prepared"] = (f"EXECUTE bench_{n}{arguments}", params)
        for name, (sql, params) in statements.items():
            for _ in range(6):  # the first loads the catalog caches; a prepared one keeps a generic plan after 5 custom ones
                cursor.execute("EXPLAIN (ANALYZE, SUMMARY) " + sql, params)
            for _ in range(RUNS * 5):
                cursor.execute("EXPLAIN (ANALYZE, SUMMARY) " + sql, params)
                lines = [row[0] for row in cursor.fetchall()]
                plans[(name, "planning")].append(float(next(l for l in lines if l.startswith("Planning Time")).split()[2]))
                plans[(name, "execution")].append(float(next(l for l in lines if l.startswith("Execution Time")).split()[2]))
    connection.set_schema_to_public()

    print("Summary (median of the runs, range in brackets):")
    print(f"  screen pop throughput: {spread(rates, '{:,.0f}')} req/s")
    for group, values in per_request.items():
        print(f"  CPU a request, {group:9s}: {spread(values)} ms")
    total = [sum(per_request[g][i] for g in per_request) for i in range(RUNS)]
    print(f"  CPU a request, all      : {spread(total)} ms (2 cores: at most ~{2000 / statistics.median(total):,.0f} req/s)")
    for (name, part), values in plans.items():
        print(f"  PostgreSQL, {name}, {part} time: {spread(values, '{:.3f}')} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
