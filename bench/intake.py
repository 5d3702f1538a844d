"""Lead intake: SQL statements per lead, and the website webhook's rate against a bare anchor (issue 22).

    .venv/bin/python -m infra.devenv bench intake

For each agency size in BENCH_INTAKE_SIZES (default 1000,10000 customers; the agencies of
bench/customers.py, ``bench-crm-<n>``, made if missing), with a service tier (a lead's clock: 24 h)
and one assignment rule (Paris → a salesperson):

1. Statements per lead, in process through Django's test client on a connection in autocommit
   (what production runs, ``CaptureQueriesContext``; the tenant's ``SET search_path`` and the page's
   session and sign-in reads count): the website webhook (new customer with phone and e-mail;
   customer on file), the public enquiry form (new customer) and the call center's page (new
   customer; customer on file). Target ≤ 15 each.
2. The webhook over HTTP: gunicorn as production starts it (``bench.request_cost.web_server``:
   ``infra.entrypoint.command("web")``, WEB_WORKERS (3) sync workers, ``--preload``), signed ``enquiry.created``
   events, each a new event id, half of them for customers on file (by phone); 8 connections for
   BENCH_SECONDS (10) per run. The anchor, in the same run with the same server settings and
   clients, alternating with it: a bare Django view without middleware doing one INSERT of the
   body (bench/_intake_anchor.py). BENCH_RUNS (3) runs: median (range) events/s, and the ratio.
   Target ≥ 300 events/s. The leads a run made are deleted after it, so the agency keeps its size.

Prints the worker class, the sizes, the load generator (wrk when installed, else Python threads in
this process) and the machine's load average at each run.
"""
import hashlib
import hmac
import json
import os
import random
import statistics
import sys
import time

SIZES = [int(n) for n in os.environ.get("BENCH_INTAKE_SIZES", "1000,10000").split(",") if n]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = 8
EVENTS_PER_RUN = int(os.environ.get("BENCH_EVENTS", "8000"))
STATEMENT_TARGET, RATE_TARGET = 15, 300
# What a lead writes, children first: a run's new rows (id above the run's start) go in this order.
MADE = ["tiers_serviceclock", "pipeline_task", "crm_contact", "pipeline_stagechange", "pipeline_inboundevent",
        "pipeline_opportunity", "crm_changelog", "crm_phone", "crm_email", "crm_customer"]


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    os.environ["STATICFILES_MANIFEST"] = "0"  # pages rendered in process, as the bench's gunicorn does
    django.setup()
    from django.core.management import call_command

    from bench.customers import SLUG, Bench as CustomerBench

    call_command("migrate_platform", verbosity=0)
    base = CustomerBench()
    print(f"Lead intake: sizes {SIZES}, {RUNS} runs of {SECONDS:.0f} s, {CONNECTIONS} connections; {load()}", flush=True)
    for size in SIZES:
        base.prepare(slug=SLUG if size == 100000 else f"{SLUG}-{size}", people=size)
        bench = IntakeBench(base, size)
        bench.setup()
        bench.statements()
        bench.webhook_rate()
    base.summary()
    return 0


class IntakeBench:
    def __init__(self, base, size: int):
        self.base, self.agency, self.size, self.rng = base, base.agency, size, random.Random(size)
        self.host = f"{self.agency.slug}.localhost"

    def setup(self) -> None:
        from django_tenants.utils import tenant_context

        from accounts.models import User
        from crm.pipeline import services
        from crm.pipeline.models import AssignmentRule
        from crm.tiers import services as tiers
        from crm.tiers.models import ServiceTier

        with tenant_context(self.agency):
            if not ServiceTier.objects.exists():
                tiers.tier_save(actor=None, name="Standard", color="#64748b", lead_response_hours=24,
                                request_response_hours=48, complaint_response_hours=24)
            self.sales = User.objects.get(email=f"sales1@{self.agency.slug}.test")
            AssignmentRule.objects.get_or_create(kind=AssignmentRule.Kind.DESTINATION, destination="巴黎",
                                                 defaults={"user": self.sales, "position": 1})
            services.intake_settings()
            self.secret = services.webhook_secret(create=True)
            from crm.customers.models import Phone
            self.known = list(Phone.objects.order_by("?").values_list("number", flat=True)[:EVENTS_PER_RUN])

    # --- 1. statements per lead ----------------------------------------------------------------------

    def _event(self, n: int, *, phone: str, email: str = "", stamp: int | None = None) -> tuple[bytes, dict]:
        from crm.customers.demo import Generator

        person = Generator(n).person()
        stamp = stamp or int(time.time())
        event = {"id": f"bench-intake-{time.time():.6f}-{n}", "type": "enquiry.created", "created": stamp,
                 "data": {"name": person.name, "phone": phone, "email": email,
                          "destination": self.rng.choice(DESTINATIONS), "adults": 2, "message": "想了解行程和报价"}}
        body = json.dumps(event, ensure_ascii=False).encode()
        signature = hmac.new(self.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        return body, {"X-Caravan-Signature": f"t={stamp},v1={signature}"}

    def statements(self) -> None:
        from django.core.cache import cache
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from django_tenants.utils import tenant_context

        from accounts.models import User
        from caravan import signing
        from crm.customers.demo import Generator

        gen = Generator(self.size + 7)
        with tenant_context(self.agency):
            agent = User.objects.get(email=f"callcenter@{self.agency.slug}.test")
            stamp = signing.dumps("pipeline.enquiry-form", time.time() - 10)
            hook, visitor, desk = Client(HTTP_HOST=self.host), Client(HTTP_HOST=self.host), Client(HTTP_HOST=self.host)
            desk.force_login(agent)
        connection.set_schema_to_public()
        for client, path in ((hook, "/api/v1/webhooks/website/"), (visitor, "/enquiry/"), (desk, "/pipeline/new/")):
            client.get(path)  # once per client: the host's agency into the cache, the device on record

        def new_phone() -> str:
            return gen.mobile()

        def new_email() -> str:
            return f"lead{self.rng.randrange(10 ** 9)}@intake.example.cn"

        def on_file() -> str:
            return self.rng.choice(self.known)

        def webhook(phone, email=""):
            body, extra = self._event(self.rng.randrange(10 ** 6), phone=phone, email=email)
            return hook.post("/api/v1/webhooks/website/", data=body, content_type="application/json",
                             HTTP_X_CARAVAN_SIGNATURE=extra["X-Caravan-Signature"])

        def form():
            with tenant_context(self.agency):  # the per-address limit (keys per agency): the bench posts from one address
                cache.delete_pattern("*pipeline:enquiry*")
            connection.set_schema_to_public()
            return visitor.post("/enquiry/", {"name": gen.person().name, "phone": new_phone(), "email": new_email(),
                                              "destination": "法国 巴黎", "adults": "2", "children": "0",
                                              "message": "樱花季", "stamp": stamp, "website": ""})

        def page(phone):
            return desk.post("/pipeline/new/", {"name": gen.person().name, "phone": phone, "destination": "Bali",
                                                "adults": 2, "children": 0, "source": "call_center", "take": "on"})

        cases = [("webhook, new customer (phone and e-mail)", lambda: webhook(new_phone(), new_email())),
                 ("webhook, customer on file", lambda: webhook(on_file())),
                 ("enquiry form, new customer", form),
                 ("call center page, new customer", lambda: page(new_phone())),
                 ("call center page, customer on file", lambda: page(on_file()))]
        before = self._max_ids()
        try:
            for label, call in cases:
                counts, took = [], []
                for _run in range(max(RUNS, 3)):
                    with CaptureQueriesContext(connection) as ctx:
                        started = time.perf_counter()
                        response = call()
                        took.append((time.perf_counter() - started) * 1000)
                    if response.status_code not in (201, 302):
                        raise RuntimeError(f"{label}: HTTP {response.status_code} {response.content[:300]!r}")
                    counts.append(len(ctx.captured_queries))
                    connection.set_schema_to_public()
                count = statistics.median(counts)
                print(f"  {self.size:,} customers, {label}: {count:.0f} statements (runs {min(counts)}–{max(counts)}), "
                      f"in process {statistics.median(took):.1f} ms", flush=True)
                self.base.record(f"statements per lead at {self.size:,}: {label}", count, "statements",
                                 f"<= {STATEMENT_TARGET}", count <= STATEMENT_TARGET)
        finally:
            self._delete_since(before)

    # --- 2. the webhook's rate over HTTP -------------------------------------------------------------

    def _max_ids(self) -> dict[str, int]:
        from django.db import connection
        from django_tenants.utils import tenant_context

        with tenant_context(self.agency), connection.cursor() as cursor:
            tops = {}
            for table in MADE:
                cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
                tops[table] = cursor.fetchone()[0]
        return tops

    def _delete_since(self, tops: dict[str, int]) -> None:
        """The leads a run made (rows past the ids before it), so the agency keeps its size. A request still
        being answered when the load stopped can commit its lead meanwhile: tried again after a second."""
        from django.db import IntegrityError, connection, transaction
        from django_tenants.utils import tenant_context

        for attempt in range(10):
            try:
                with tenant_context(self.agency), transaction.atomic(), connection.cursor() as cursor:
                    for table in MADE:
                        cursor.execute(f"DELETE FROM {table} WHERE id > %s", [tops[table]])
                break
            except IntegrityError:
                if attempt == 9:
                    raise
                time.sleep(1)
        connection.set_schema_to_public()

    def _bodies(self) -> list[tuple[bytes, dict]]:
        from crm.customers.demo import Generator

        gen, stamp, bodies = Generator(int(time.time())), int(time.time()), []
        for n in range(EVENTS_PER_RUN):
            phone = self.known[n // 2 % len(self.known)] if n % 2 and self.known else gen.mobile()
            bodies.append(self._event(n, phone=phone, stamp=stamp))
        return bodies

    def webhook_rate(self) -> None:
        from django.db import connection

        from bench._server import post_throughput
        from bench.request_cost import web_server
        from infra.entrypoint import DEFAULTS

        workers = os.environ.get("WEB_WORKERS") or DEFAULTS["WEB_WORKERS"]

        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS public.bench_intake_anchor (id bigserial PRIMARY KEY, body text)")
        rates, anchors, tool = [], [], "?"
        with web_server("caravan.wsgi", "/healthz") as server, \
                web_server("bench._intake_anchor:application", "/anchor/") as bare:
            print(f"  webhook: gunicorn as infra/entrypoint.py starts it ({workers} sync workers, --preload); anchor: "
                  "the same, bare view (one INSERT)", flush=True)
            cases = [("webhook", server.port, "/api/v1/webhooks/website/", rates),
                     ("anchor", bare.port, "/anchor/", anchors)]
            for run in range(RUNS):
                for name, port, path, into in (cases if run % 2 == 0 else cases[::-1]):  # alternating
                    bodies = self._bodies()
                    before = self._max_ids()
                    state = load()
                    headers = {"Host": f"{self.host}:{port}", "Content-Type": "application/json"}
                    result = post_throughput(port, headers, path, bodies, concurrency=CONNECTIONS, seconds=SECONDS)
                    tool = result["tool"]
                    if name == "webhook":
                        time.sleep(2)  # the requests still queued when the load stopped
                        self._delete_since(before)
                    into.append(result["rps"])
                    print(f"    run {run + 1} {name}: {result['rps']:,.0f} events/s ({result['requests']:,} requests, "
                          f"non-2xx {result['non_2xx']}, p50 {result['p50']} p99 {result['p99']}; {state})", flush=True)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS public.bench_intake_anchor")
        rate, anchor = statistics.median(rates), statistics.median(anchors)
        print(f"  {self.size:,} customers: webhook {rate:,.0f} events/s ({min(rates):,.0f}–{max(rates):,.0f}), anchor "
              f"{anchor:,.0f} ({min(anchors):,.0f}–{max(anchors):,.0f}): {rate / anchor:.0%} of the anchor "
              f"(load generator: {tool})", flush=True)
        self.base.record(f"webhook at {self.size:,} customers, median of {RUNS} ({min(rates):,.0f}–{max(rates):,.0f})",
                         rate, "events/s", f">= {RATE_TARGET}", rate >= RATE_TARGET)
        self.base.record(f"anchor (bare view, one INSERT) at {self.size:,}, median ({min(anchors):,.0f}–{max(anchors):,.0f})",
                         anchor, "events/s")
        self.base.record(f"webhook / anchor at {self.size:,}", rate / anchor * 100, "%")


DESTINATIONS = ["日本 东京", "泰国 普吉岛", "法国 巴黎", "马尔代夫", "新加坡", "海南 三亚", "Italy Rome", "Japan Kyoto"]

if __name__ == "__main__":
    sys.exit(main())
