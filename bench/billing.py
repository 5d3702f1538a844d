"""Billing: how fast the Stripe webhook endpoint answers, and what a status refresh costs.

    .venv/bin/python -m infra.devenv bench billing

Starts its own localstripe unless STRIPE_SECRET_KEY is set. Then, on the platform domain:
1. WEBHOOKS signed events (each a new id, half of them replayed once) posted to
   /billing/stripe/webhook/ through Django's test client (no network): verify the signature, store
   the event once, queue the task on commit. p50 / p95 per request and requests per second.
   Target: p95 <= 50 ms ("the endpoint answers fast"; Stripe waits up to 10 s).
2. ``refresh(agency)`` for an agency with a subscription: read the subscription from Stripe
   (localstripe on 127.0.0.1) and apply the status rule. p50 / p95.
The bench agency, its Stripe customer and the events it stored are removed afterwards.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal

WEBHOOKS = int(os.environ.get("BENCH_WEBHOOKS", "1000"))
REFRESHES = int(os.environ.get("BENCH_REFRESHES", "50"))
TARGET_MS = 50


def _localstripe() -> subprocess.Popen | None:
    if os.environ.get("STRIPE_SECRET_KEY"):
        return None
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    os.environ.update({"STRIPE_API_BASE": f"http://127.0.0.1:{port}", "STRIPE_SECRET_KEY": "sk_test_bench",
                       "STRIPE_WEBHOOK_SECRET": "whsec_bench"})
    return process


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    process = _localstripe()
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    import stripe
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from billing import services
    from billing.models import Plan, StripeEvent
    from tenants.models import Agency
    from tenants.services import agency_delete, agency_onboard

    try:
        call_command("migrate_platform", verbosity=0)
        client = Client(HTTP_HOST=settings.PLATFORM_DOMAIN)
        timings, replays = [], 0
        run = f"bench{int(time.time())}"
        for i in range(WEBHOOKS):
            body = json.dumps({"id": f"evt_{run}_{i}", "object": "event", "type": "invoice.paid", "created": int(time.time()),
                               "data": {"object": {"id": f"in_{i}", "object": "invoice", "customer": "cus_bench"}}})
            at = int(time.time())
            signature = stripe.WebhookSignature._compute_signature(f"{at}.{body}", settings.STRIPE_WEBHOOK_SECRET)
            for _ in range(2 if i % 2 else 1):
                started = time.perf_counter()
                response = client.post("/billing/stripe/webhook/", body, content_type="application/json",
                                       HTTP_STRIPE_SIGNATURE=f"t={at},v1={signature}")
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.content
            replays += i % 2
        stored = StripeEvent.objects.filter(event_id__startswith=f"evt_{run}_").count()
        total = sum(timings) / 1000
        print(f"Webhook endpoint: {len(timings):,} deliveries ({replays:,} replays) in {total:.1f} s = "
              f"{len(timings) / total:,.0f}/s; p50 {statistics.median(timings):.1f} ms, p95 {_p95(timings):.1f} ms "
              f"(target <= {TARGET_MS} ms: {'PASS' if _p95(timings) <= TARGET_MS else 'MISS'}); "
              f"{stored:,} events stored (each once)")
        StripeEvent.objects.filter(event_id__startswith=f"evt_{run}_").delete()

        slug = "bench-billing"
        if existing := Agency.objects.filter(slug=slug).first():
            agency_delete(agency=existing, confirm_slug=slug, actor="bench")
        agency = agency_onboard(name="Bench billing", slug=slug, plan="starter", admin_email=f"admin@{slug}.test",
                                actor="bench").agency
        plan = Plan.objects.create(code=f"bench-{run}", name="Bench", seat_price_month=Decimal("100"),
                                   seat_price_year=Decimal("1000"))
        card = services.stripe_client().v1.payment_methods.create(
            {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}})
        started = time.perf_counter()
        services.subscribe(agency=agency, plan=services.plan_sync(plan), interval="month", payment_method=card.id)
        subscribe_ms = (time.perf_counter() - started) * 1000
        refresh = []
        for _ in range(REFRESHES):
            started = time.perf_counter()
            services.refresh(agency)
            refresh.append((time.perf_counter() - started) * 1000)
        print(f"Subscribe (customer, card, subscription, first invoice paid): {subscribe_ms:.0f} ms; "
              f"refresh from Stripe + status rule: p50 {statistics.median(refresh):.1f} ms, p95 {_p95(refresh):.1f} ms")
        agency_delete(agency=Agency.objects.get(slug=slug), confirm_slug=slug, actor="bench")
        Plan.objects.filter(pk=plan.pk).delete()
    finally:
        if process is not None:
            process.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
