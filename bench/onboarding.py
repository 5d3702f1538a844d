"""How long does onboarding an agency take: the template snapshot vs clone_schema() vs migrations?

    make bench            # or: .venv/bin/python -m infra.devenv bench onboarding

Prints, for each way, the time of the whole `agency_onboard` (schema, domain, first admin,
invitation queued; one transaction) over several agencies, then removes them. Target: ≤ 1 s.
"""
import os
import statistics
import sys
import time

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tenants.models import Agency
    from tenants.services import agency_delete, agency_onboard

    call_command("migrate_platform", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'agency_template'")
        tables = cursor.fetchone()[0]
    print(f"Onboarding benchmark: {ROUNDS} agencies per method, template schema has {tables} tables")
    results = {}
    for method in ("migrate", "clone", "snapshot"):
        timings = []
        for i in range(ROUNDS):
            slug = f"bench-{method}-{i}"
            if existing := Agency.objects.filter(slug=slug).first():
                agency_delete(agency=existing, confirm_slug=slug, actor="bench")
            started = time.perf_counter()
            agency_onboard(name=f"Bench {i}", slug=slug, plan="starter", admin_email=f"admin@{slug}.test",
                           actor="bench", schema_method=method)
            timings.append(time.perf_counter() - started)
            agency_delete(agency=Agency.objects.get(slug=slug), confirm_slug=slug, actor="bench")
        results[method] = timings
        print(f"  {method:8s} median {statistics.median(timings) * 1000:7.0f} ms   "
              f"min {min(timings) * 1000:7.0f} ms   max {max(timings) * 1000:7.0f} ms")
    snapshot = statistics.median(results["snapshot"])
    verdict = "meets" if snapshot <= 1.0 else "MISSES"
    print(f"The snapshot is {statistics.median(results['migrate']) / snapshot:.1f}x faster than migrations and "
          f"{statistics.median(results['clone']) / snapshot:.1f}x faster than clone_schema() with "
          f"{Agency.objects.agencies().count()} agencies present; it {verdict} the 1 s target. "
          "How it grows with agencies: bench/scale.py.")


if __name__ == "__main__":
    sys.exit(main())
