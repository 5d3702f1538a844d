"""The screen pop through Django's whole request stack, in-process: middleware (host → agency, sessions,
CSP, read-only check), token authentication, throttling, the view and its access-log entry — no
gunicorn, no socket, so what changes is the code, not the server's scheduling.

    .venv/bin/python -m infra.devenv bench screen_pop_stack

Uses the agency ``bench-crm`` of bench/customers.py (made there; run that bench first). Sends
BENCH_POP_NUMBERS numbers (default 500) RUNS times (default 5) with Django's test client and prints
the median time per request and the range over the runs (the request log lines go to stderr, as in
production; `2>/dev/null` hides them). Comparing two versions of the code: run it
from each checkout in turn against the same database (docs/performance.md, "Before and after issue 19").
"""
import os
import statistics
import sys
import time

NUMBERS = int(os.environ.get("BENCH_POP_NUMBERS", "500"))
RUNS = int(os.environ.get("BENCH_POP_RUNS", "5"))


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.test import Client
    from django_tenants.utils import tenant_context

    from accounts.models import User
    from accounts.scopes import all_scopes
    from accounts.tokens import token_create
    from bench.customers import SLUG
    from crm.customers.models import Phone
    from tenants.models import Agency

    agency = Agency.objects.filter(slug=SLUG).first()
    if agency is None:
        print(f"No agency {SLUG}: run `make bench` (bench/customers.py) first.")
        return 1
    with tenant_context(agency):
        agent = User.objects.filter(is_active=True).order_by("pk").first()
        key, token = token_create(user=agent, name="screen pop stack bench", scopes=all_scopes())
        numbers = list(Phone.objects.order_by("pk").values_list("number", flat=True)[:NUMBERS])
    client = Client(HTTP_HOST=f"{SLUG}.localhost", HTTP_AUTHORIZATION=f"Token {token}", HTTP_ACCEPT_LANGUAGE="en")
    paths = [f"/api/v1/screen-pop/?phone={n}" for n in numbers]
    for path in paths[:100]:  # warm up, and check it answers
        status = client.get(path).status_code
        if status != 200:
            print(f"The screen pop answered {status}.")
            return 1
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for path in paths:
            client.get(path)
        runs.append((time.perf_counter() - started) / len(paths) * 1000)
    with tenant_context(agency):
        key.delete()
    print(f"Screen pop through the whole Django stack, in-process (test client), agency {SLUG}, "
          f"{len(paths)} numbers x {RUNS} runs, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}: "
          f"median {statistics.median(runs):.2f} ms per request (range {min(runs):.2f}-{max(runs):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
