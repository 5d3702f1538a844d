"""Erasing one customer (crm.retention.services.customer_erase): how long does the request take as
the agency grows? The schema-wide sweep reads every text column of every table once.

    .venv/bin/python -m infra.devenv bench erasure

Makes (or reuses) an agency ``bench-erasure-<size>`` for each size in BENCH_ERASURE_CUSTOMERS
(default 2,000 and 20,000 customers, each with a phone, an e-mail, 3 timeline contacts, 5 change-log
entries and a trip with 2 items and a payment). For each size, BENCH_ERASURE_RUNS times (5), erases
one fully furnished customer inside a transaction that is then rolled back (so every run erases the
same data), timing the whole erasure and the sweep alone. Prints the median and range in seconds.
"""
import os
import statistics
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "platform")]

SIZES = [int(n) for n in os.environ.get("BENCH_ERASURE_CUSTOMERS", "2000,20000").split(",")]
RUNS = int(os.environ.get("BENCH_ERASURE_RUNS", "5"))
SLUG = "bench-erasure"


class Rollback(Exception):
    pass


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django_tenants.utils import tenant_context

    from tenants.models import Agency
    from tenants.services import agency_onboard

    call_command("migrate_platform", verbosity=0)
    load = os.getloadavg()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"machine: {os.cpu_count()} cpus, load average {load[0]:.2f} / {load[1]:.2f}; PostgreSQL {version}; "
          f"sizes {SIZES} customers; {RUNS} runs each")
    for size in SIZES:  # an agency per size, made once and then reused
        slug = f"{SLUG}-{size}"
        agency = Agency.objects.filter(slug=slug).first() or agency_onboard(
            name=f"Bench erasure {size}", slug=slug, plan="professional", admin_email=f"admin@{slug}.test",
            admin_name="Bench Admin", language="en").agency
        with tenant_context(agency):
            from accounts.models import User

            admin = User.objects.filter(role="admin").order_by("pk").first()
            target = furnished()
            grow(size)
            with connection.cursor() as cursor:  # statistics as autovacuum would have them by now
                for table in connection.introspection.table_names(cursor):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
            measure(size, target, admin)
    return 0


def grow(size: int) -> None:
    """Bulk rows up to ``size`` customers (made once, then reused)."""
    from crm.customers.models import ChangeLog, Contact, Customer, Email, Phone
    from crm.trips.models import ItineraryItem, Payment, Trip

    have = Customer.objects.filter(external_ref__startswith="bench-").count()
    step = 2000
    for start in range(have, size, step):
        people = Customer.objects.bulk_create([
            Customer(name=f"客户{i} Person {i}", external_ref=f"bench-{i}", search_text=f"客户{i} person {i}")
            for i in range(start, min(size, start + step))])
        Phone.objects.bulk_create([Phone(customer=p, number=f"+86137{p.pk:08d}") for p in people])
        Email.objects.bulk_create([Email(customer=p, address=f"person{p.pk}@bench.test") for p in people])
        Contact.objects.bulk_create([Contact(customer=p, channel="call", summary=f"Called about trip {n} to Kyoto")
                                     for p in people for n in range(3)])
        ChangeLog.objects.bulk_create([ChangeLog(customer=p, via="import", field=f, old="", new=f"value {p.pk}")
                                       for p in people for f in ("name", "phones", "emails", "owner", "kind")])
        trips = Trip.objects.bulk_create([Trip(customer=p, title=f"Kyoto {p.pk}", destination="Japan",
                                               currency="CNY", status="completed") for p in people])
        ItineraryItem.objects.bulk_create([ItineraryItem(trip=t, kind="hotel", description="Hotel", sell=Decimal(500))
                                           for t in trips for _ in range(2)])
        Payment.objects.bulk_create([Payment(trip=t, kind="balance", amount=Decimal(1000), currency="CNY")
                                     for t in trips])


def furnished():
    from crm.customers import services as crm_services
    from crm.customers.models import ChangeLog, Customer
    from crm.trips.models import Payment, Trip

    existing = Customer.objects.filter(external_ref="bench-target").first()
    if existing:
        return existing
    customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="甄士隐", external_ref="bench-target",
                                            latin_surname="ZHEN", latin_given="Shiyin", phones=["13912345678"],
                                            emails=["zhen@bench.test"], addresses=[{"line": "18 Renmin Road"}])
    crm_services.document_add(actor=None, customer=customer, kind="passport", issuing_country="CN",
                              number="E98765432", via=ChangeLog.Via.PAGE)
    for n in range(10):
        trip = Trip.objects.create(customer=customer, title=f"甄士隐 trip {n}", currency="CNY", status="completed",
                                   depart_on=date(2024, 1, 1))
        Payment.objects.create(trip=trip, kind="balance", amount=Decimal(100), currency="CNY", note="from 13912345678")
    return customer


def measure(size: int, target, admin) -> None:
    from django.db import transaction

    from crm.retention import services, sweep
    from crm.retention.models import Erasure

    whole, swept = [], []
    original = sweep.replace

    def timed_replace(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            if kwargs.get("rows") is None:
                swept.append(time.perf_counter() - start)

    sweep.replace = timed_replace
    try:
        for _ in range(RUNS):
            start = time.perf_counter()
            try:
                with transaction.atomic():
                    services.customer_erase(actor=admin, customer=target, reason=Erasure.Reason.REQUEST,
                                            confirm=str(target.pk), via=Erasure.Via.PAGE)
                    whole.append(time.perf_counter() - start)
                    raise Rollback
            except Rollback:
                pass
    finally:
        sweep.replace = original
    print(f"{size:>7,} customers: erasure median {statistics.median(whole):.2f} s "
          f"(range {min(whole):.2f}–{max(whole):.2f}); schema-wide sweep median {statistics.median(swept):.2f} s "
          f"(range {min(swept):.2f}–{max(swept):.2f})")


if __name__ == "__main__":
    sys.exit(main())
