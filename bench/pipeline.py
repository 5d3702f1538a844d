"""From lead to trip at scale: the pipeline board, the after-trip job and the lead webhook.

    .venv/bin/python -m infra.devenv bench pipeline

Uses the agency ``bench-crm`` of bench/customers.py (made with 100,000 people if missing).
1. Board: 2,000 open opportunities for one salesperson (and 18,000 for colleagues) spread over the
   open stages; ``GET /pipeline/`` as that salesperson through a real gunicorn, p50/p95
   (target p95 <= 150 ms), and the manager's board of everyone's 20,000.
2. After-trip job: 50,000 confirmed trips that returned yesterday, each with a customer who has an
   e-mail; ``crm.care.services.after_trip_run()`` completes them, makes the follow-up call tasks
   and the surveys and queues the survey e-mails (target <= 30 s). The queued messages are purged.
3. Webhook: ``POST /api/v1/webhooks/website/`` with signed ``enquiry.created`` events, each a new
   event id (half of them for customers already on file, matched by phone): sustained rate with wrk
   (8 connections, 10 s) when installed, else Python threads.
Sizes: BENCH_OPPORTUNITIES (2000), BENCH_TRIPS (50000), BENCH_WEBHOOKS (20000); BENCH_PARTS picks
some of board,after_trip,webhook.
"""
import hashlib
import hmac
import json
import os
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal

MINE = int(os.environ.get("BENCH_OPPORTUNITIES", "2000"))
TRIPS = int(os.environ.get("BENCH_TRIPS", "50000"))
WEBHOOKS = int(os.environ.get("BENCH_WEBHOOKS", "20000"))
BOARD_REQUESTS, BOARD_SECONDS = 200, 60
LOAD_SECONDS = 10


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command

    from bench.customers import Bench as CustomerBench

    call_command("migrate_platform", verbosity=0)
    parts = set(os.environ.get("BENCH_PARTS", "board,after_trip,webhook").split(","))
    base = CustomerBench()
    base.prepare()  # the 100,000-customer agency
    bench = PipelineBench(base)
    if "board" in parts:
        bench.board()
    if "after_trip" in parts:
        bench.after_trip()
    if "webhook" in parts:
        bench.webhook()
    base.summary()
    return 0


class PipelineBench:
    def __init__(self, base):
        self.base, self.agency, self.rng = base, base.agency, random.Random(4)

    # --- 1. the board ---------------------------------------------------------------------------------

    def _opportunities(self):
        """2,000 open opportunities for sales1 and 18,000 for the others (made once)."""
        from django.db import connection
        from django.utils import timezone

        from accounts.models import User
        from crm.customers.models import Customer
        from crm.pipeline.models import Opportunity, Stage

        sellers = list(User.objects.filter(email__startswith="sales").order_by("email"))
        mine = sellers[0]
        have = Opportunity.objects.filter(owner=mine).count()
        if have >= MINE:
            return mine
        stages = list(Stage.objects.filter(kind__in=["open", "deposit"]).order_by("position"))
        ids = list(Customer.objects.filter(kind="person").values_list("pk", flat=True)[:100000])
        now, currency = timezone.now(), self.agency.currency
        rows = []
        for n in range(MINE * 10):
            owner = mine if n < MINE else sellers[1 + n % (len(sellers) - 1)]
            created = now - timedelta(days=self.rng.randint(0, 400), minutes=self.rng.randint(0, 1440))
            rows.append(Opportunity(
                customer_id=self.rng.choice(ids), title=f"{self.rng.choice(DESTINATIONS)} · {n}",
                destination=self.rng.choice(DESTINATIONS), adults=self.rng.randint(1, 4),
                value=Decimal(self.rng.randint(30, 800) * 100), currency=currency, source="staff",
                is_key=self.rng.random() < 0.1, stage=self.rng.choice(stages), owner=owner, created_at=created,
                stage_changed_at=created + timedelta(days=self.rng.randint(0, 20)), assigned_at=created))
        started = time.perf_counter()
        Opportunity.objects.bulk_create(rows, batch_size=5000)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE pipeline_opportunity")
        print(f"  made {len(rows):,} open opportunities in {time.perf_counter() - started:.1f} s", flush=True)
        return mine

    def _session(self, user) -> str:
        from django.test import Client

        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    def board(self) -> None:
        from django_tenants.utils import tenant_context

        from accounts.models import User
        from bench._server import Client, app_server, percentile, timed_gets
        from crm.pipeline.models import Opportunity

        with tenant_context(self.agency):
            mine = self._opportunities()
            manager = User.objects.get(email=f"manager@{self.agency.slug}.test")
            sessions = {"salesperson": self._session(mine), "manager": self._session(manager)}
            counts = {"salesperson": Opportunity.objects.filter(owner=mine, closed_at__isnull=True).count(),
                      "manager": Opportunity.objects.filter(closed_at__isnull=True).count()}
        host = f"{self.agency.slug}.localhost"
        with app_server(workers=2, probe_host=host) as server:
            for who, session in sessions.items():
                headers = {"Host": f"{host}:{server.port}", "Cookie": f"sessionid={session}", "Accept-Language": "zh-hans"}
                client = Client(server.port, headers)
                path = "/pipeline/" if who == "salesperson" else "/pipeline/?owner=all"
                status, body = client.get(path)
                if status != 200:
                    print(f"Board answered {status}: {body[:300]!r}; see {server.log}", flush=True)
                    self.base.notes.append(f"board not measured: HTTP {status}")
                    return
                timed_gets(client, [path] * 20, max_seconds=20)  # warm up both workers
                latencies, statuses = timed_gets(client, [path] * BOARD_REQUESTS, max_seconds=BOARD_SECONDS)
                client.close()
                p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
                print(f"Board as {who} ({counts[who]:,} open): n={len(latencies)} p50 {p50:.1f} ms p95 {p95:.1f} ms, "
                      f"{len(body) / 1024:.0f} KiB; statuses {statuses}", flush=True)
                target = who == "salesperson"
                self.base.record(f"board p95, {who} ({counts[who]:,} open)", p95, "ms",
                                 "<= 150 ms" if target else "", (p95 <= 150) if target else None)

    # --- 2. the after-trip job ------------------------------------------------------------------------

    def after_trip(self) -> None:
        from django.db import connection
        from django.utils import timezone
        from django_tenants.utils import tenant_context

        from accounts.models import User
        from caravan.celery import app
        from crm.care.models import Survey
        from crm.care.services import after_trip_run
        from crm.customers.models import Email
        from crm.pipeline.models import Task
        from crm.trips.models import Trip

        with tenant_context(self.agency):
            timezone.activate(self.agency.time_zone)
            today = timezone.localdate()
            # Start clean: the trips of an earlier run, their tasks and surveys.
            old = Trip.objects.filter(title__startswith="bench-after-trip")
            Task.objects.filter(trip__in=old).delete()
            Survey.objects.filter(trip__in=old).delete()
            old.delete()
            owners = list(User.objects.filter(email__startswith="sales").values_list("pk", flat=True))
            customers = list(Email.objects.values_list("customer_id", flat=True).distinct()[:TRIPS])
            rows = [Trip(customer_id=customers[n % len(customers)], title=f"bench-after-trip {n}",
                         destination=self.rng.choice(DESTINATIONS), depart_on=today - timedelta(days=8),
                         return_on=today - timedelta(days=1), status=Trip.Status.CONFIRMED,
                         currency=self.agency.currency, owner_id=owners[n % len(owners)]) for n in range(TRIPS)]
            started = time.perf_counter()
            Trip.objects.bulk_create(rows, batch_size=5000)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE trips_trip")
            print(f"After-trip job: made {TRIPS:,} trips that returned yesterday in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            started = time.perf_counter()
            result = after_trip_run(today=today)
            took = time.perf_counter() - started
            again = time.perf_counter()
            second = after_trip_run(today=today)
            took_again = time.perf_counter() - again
            purged = app.control.purge()  # nobody here sends the queued survey e-mails
        print(f"  first run {took:.1f} s: {result}; second run {took_again:.2f} s: {second}; purged {purged} messages",
              flush=True)
        self.base.record(f"after-trip job over {TRIPS:,} trips", took, "s", "<= 30 s", took <= 30)
        self.base.record("after-trip job, second run (nothing to do)", took_again, "s")

    # --- 3. the webhook -------------------------------------------------------------------------------

    def webhook(self) -> None:
        from django_tenants.utils import tenant_context

        from bench._server import app_server, post_throughput
        from crm.customers.demo import Generator
        from crm.customers.models import Phone
        from crm.pipeline import services as pipeline

        with tenant_context(self.agency):
            secret = pipeline.webhook_secret_rotate(actor=None)
            known = list(Phone.objects.order_by("?").values_list("number", flat=True)[:WEBHOOKS // 2])
        gen, stamp, run = Generator(99), int(time.time()), f"{time.time():.0f}"
        bodies = []
        for n in range(WEBHOOKS):
            person = gen.person()
            phone = known[n // 2] if n % 2 and n // 2 < len(known) else gen.mobile()
            event = {"id": f"bench-{run}-{n}", "type": "enquiry.created", "created": stamp,
                     "data": {"name": person.name, "phone": phone, "destination": self.rng.choice(DESTINATIONS),
                              "adults": 2, "message": "想了解行程和报价"}}
            body = json.dumps(event, ensure_ascii=False).encode()
            signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
            bodies.append((body, {"X-Caravan-Signature": f"t={stamp},v1={signature}"}))
        host = f"{self.agency.slug}.localhost"
        with app_server(workers=2, probe_host=host) as server:
            headers = {"Host": f"{host}:{server.port}", "Content-Type": "application/json"}
            result = post_throughput(server.port, headers, "/api/v1/webhooks/website/", bodies,
                                     concurrency=8, seconds=LOAD_SECONDS)
        print(f"Webhook ({result['tool']}, 8 connections, {LOAD_SECONDS} s): {result['rps']:,.0f} events/s, "
              f"{result['requests']:,} requests, non-2xx {result['non_2xx']}, p50 {result['p50']} p99 {result['p99']}",
              flush=True)
        self.base.record("webhook sustained rate (new leads)", result["rps"], "events/s")
        if result["non_2xx"]:
            self.base.notes.append(f"webhook: {result['non_2xx']} non-2xx answers (events beyond the prepared "
                                   f"{WEBHOOKS:,} are replays, answered 200 without writing)")


DESTINATIONS = ["日本 东京", "泰国 普吉岛", "法国 巴黎", "马尔代夫", "新加坡", "澳大利亚 悉尼", "云南 丽江", "海南 三亚",
                "Italy Rome", "Japan Kyoto", "瑞士 因特拉肯", "土耳其 伊斯坦布尔", "埃及 开罗", "新西兰 皇后镇"]

if __name__ == "__main__":
    sys.exit(main())
