"""Travel-policy checks through the service layer and the API.

    .venv/bin/python -m infra.devenv bench policy_check

Uses the agency ``bench-crm`` of bench/customers.py (made with 100,000 people if missing) and adds,
once, a corporate account with the 30-rule policy of bench/policy_engine.py (saved as a policy
version), a P3 Sales traveler of it, and a USD exchange rate.
1. In-process: ``crm.policies.services.policy_check`` for one flight offer with 20 alternatives
   (some in USD): load the version in force, the traveler's employment and the rates, build the
   engine's policy from the stored document, judge. Checks per second (one at a time).
2. Over HTTP: ``POST /api/v1/policy-check`` with the same body, one keep-alive connection to a real
   gunicorn (2 sync workers), p50/p95/p99 (target p95 <= 30 ms).
BENCH_SECONDS (default 5) bounds part 1; BENCH_REQUESTS (default 500) sets part 2's requests.
"""
import http.client
import json
import os
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "500"))
ACCOUNT = "基准差旅客户 Bench Policy Account"


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command

    from bench.customers import Bench as CustomerBench

    call_command("migrate_platform", verbosity=0)
    base = CustomerBench()
    base.prepare()  # the 100,000-customer agency
    bench = PolicyBench(base)
    bench.prepare()
    bench.in_process()
    bench.over_http()
    base.summary()
    return 0


class PolicyBench:
    def __init__(self, base):
        self.base, self.agency, self.rng = base, base.agency, random.Random(30)

    def prepare(self) -> None:
        """The account, its 30-rule policy, a traveler, a rate, a token (made once), and the body."""
        from django.utils import timezone
        from django_tenants.utils import tenant_context
        from accounts.scopes import all_scopes
        from accounts.tokens import token_create

        from accounts.models import User
        from bench.policy_engine import thirty_rule_policy
        from crm.customers import services as crm_services
        from crm.customers.models import ChangeLog, Customer
        from crm.policies import documents, selectors, services
        from crm.policies.models import ExchangeRate

        with tenant_context(self.agency):
            account = Customer.objects.filter(kind=Customer.Kind.COMPANY, name=ACCOUNT,
                                              travel_policy__isnull=False).first()
            if account is None:
                account = crm_services.customer_create(actor=None, via=ChangeLog.Via.SYSTEM, name=ACCOUNT,
                                                       kind=Customer.Kind.COMPANY)
                traveler = crm_services.customer_create(actor=None, via=ChangeLog.Via.SYSTEM, name="基准出行人 Bench Traveler",
                                                        kind=Customer.Kind.PERSON)
                manager = crm_services.customer_create(actor=None, via=ChangeLog.Via.SYSTEM,
                                                       name="基准差旅经理 Bench Travel Manager", kind=Customer.Kind.PERSON)
                crm_services.employment_set(actor=None, company=account, person=manager, job_grade="M2",
                                            department="Admin")
                crm_services.employment_set(actor=None, company=account, person=traveler, job_grade="P3",
                                            department="Sales", reports_to=manager)
                document = documents.from_policy(thirty_rule_policy())
                services.policy_save(actor=None, account=account, rules=document, currency="CNY",
                                     travel_manager=manager, effective_from=timezone.now() - timedelta(days=1),
                                     note="bench: 30 rules")
            if not ExchangeRate.objects.filter(currency="USD").exists():
                services.exchange_rate_set(actor=None, currency="USD", rate="7.2")
            self.account = account
            self.traveler = Customer.objects.get(employments__company=account, employments__job_grade="P3")
            version = selectors.policy_in_force(account, timezone.now())
            self.rules = documents.rule_count(version.rules)
            seller = User.objects.get(email=f"sales1@{self.agency.slug}.test")
            self.token = token_create(user=seller, name="bench", scopes=all_scopes())[1]
            self.body = self._body()
        print(f"Policy check benchmark: account {account.pk} with a {self.rules}-rule policy, 1 offer + "
              f"{len(self.body['alternatives'])} alternatives", flush=True)

    def _body(self) -> dict:
        from django.utils import timezone

        day = (timezone.now() + timedelta(days=14)).replace(hour=9, minute=0, second=0, microsecond=0)

        def offer(i: int) -> dict:
            departure = day + timedelta(minutes=self.rng.randint(-180, 300))
            currency = "USD" if i % 5 == 0 else "CNY"
            fare = self.rng.randint(800, 4000) / (7.2 if currency == "USD" else 1)
            return {"carrier": self.rng.choice(["CA", "MU", "CZ", "HU", "ZH"]), "flight_numbers": [f"XX{1000 + i}"],
                    "origin": "PEK", "destination": "SHA", "departure": departure.isoformat(),
                    "duration_minutes": self.rng.choice([130, 135, 150]), "stops": self.rng.choice([0, 0, 1, 2]),
                    "cabin": self.rng.choice(["economy", "economy", "premium_economy", "business"]),
                    "fare": str(Decimal(fare).quantize(Decimal("0.01"))), "currency": currency, "distance_km": 1080}

        judged = {**offer(0), "cabin": "business", "carrier": "HU", "fare": "3900.00", "currency": "CNY",
                  "departure": day.isoformat()}
        return {"account": self.account.pk, "traveler": self.traveler.pk, "kind": "flight", "offer": judged,
                "alternatives": [offer(i) for i in range(1, 21)], "requested_departure": day.isoformat()}

    def in_process(self) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext
        from django_tenants.utils import tenant_context

        from crm.policies import services

        body = dict(self.body)
        kwargs = {"account": self.account, "traveler": self.traveler, "kind": body["kind"], "offer": body["offer"],
                  "alternatives": body["alternatives"], "requested_departure": body["requested_departure"]}
        with tenant_context(self.agency):
            with CaptureQueriesContext(connection) as queries:
                outcome = services.policy_check(**kwargs)
            failed = ", ".join(r.code for r in outcome.verdict.failed)
            print(f"  verdict: compliant={outcome.verdict.compliant} ({failed}); missed saving "
                  f"{outcome.verdict.missed_saving} {outcome.verdict.currency}; {len(queries)} SQL queries a check",
                  flush=True)
            done, started = 0, time.perf_counter()
            deadline = started + SECONDS
            while time.perf_counter() < deadline:
                services.policy_check(**kwargs)
                done += 1
            took = time.perf_counter() - started
        rate = done / took
        print(f"  in-process (policy load + engine): {done:,} checks in {took:.1f} s = {rate:,.0f} checks/s "
              f"({1000 / rate:.2f} ms a check)", flush=True)
        self.base.record(f"policy check in-process ({self.rules} rules, 20 alternatives)", rate, "checks/s")

    def over_http(self) -> None:
        from bench._server import app_server, percentile

        host = f"{self.agency.slug}.localhost"
        payload = json.dumps(self.body).encode()
        with app_server(workers=2, probe_host=host) as server:
            headers = {"Host": f"{host}:{server.port}", "Authorization": f"Token {self.token}",
                       "Content-Type": "application/json", "Accept-Language": "zh-hans"}
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            latencies, statuses = [], {}
            for n in range(REQUESTS + 20):
                started = time.perf_counter()
                conn.request("POST", "/api/v1/policy-check", body=payload, headers=headers)
                response = conn.getresponse()
                body = response.read()
                if n < 20:  # warm-up: imports, connections, caches of both workers
                    if response.status != 200:
                        print(f"  policy-check answered {response.status}: {body[:300]!r}; see {server.log}")
                        return
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status] = statuses.get(response.status, 0) + 1
            conn.close()
        p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
        print(f"  POST /api/v1/policy-check over HTTP ({server.label}): n={len(latencies)} p50 {p50:.1f} ms "
              f"p95 {p95:.1f} ms p99 {p99:.1f} ms; statuses {statuses}", flush=True)
        self.base.record("policy-check API p50", p50, "ms")
        self.base.record("policy-check API p95", p95, "ms", "<= 30 ms", p95 <= 30)
        self.base.record("policy-check API p99", p99, "ms")


if __name__ == "__main__":
    sys.exit(main())
