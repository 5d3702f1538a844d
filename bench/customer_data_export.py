"""One customer's data export (crm.privacy.export): is it small and fast enough to answer in the request?

    .venv/bin/python -m infra.devenv bench customer_data_export

Makes (or reuses) the agency ``bench-privacy`` with, per size in BENCH_EXPORT_TRIPS (default 10 and
2,000 trips), one customer holding that many trips (each with 4 itinerary items, 2 travelers — the
customer and a companion —, 2 payments, a visa checklist line), an opportunity and a follow-up task
per trip, 10 contacts, 2 change-log entries and 2 access-log entries per trip, 2 documents, phones,
e-mails, preferences; and 3,000 other customers with a trip each around them (so the indexes are real).

For each size, BENCH_EXPORT_RUNS times (5): the collector alone (``collect.customer_record_ids``:
ids of every row about the customer) and the whole archive (``export.build_archive``: rows read,
serialised to data.json, zipped). Prints rows, data.json and ZIP sizes, the median and range of
seconds, and the peak traced Python memory of one build.
"""
import os
import random
import statistics
import sys
import time
import tracemalloc
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "platform")]

SIZES = [int(n) for n in os.environ.get("BENCH_EXPORT_TRIPS", "10,2000").split(",")]
RUNS = int(os.environ.get("BENCH_EXPORT_RUNS", "5"))
OTHERS = 3000
SLUG = "bench-privacy"


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
    agency = Agency.objects.filter(slug=SLUG).first() or agency_onboard(
        name="Bench privacy", slug=SLUG, plan="professional", admin_email=f"admin@{SLUG}.test",
        admin_name="Bench Admin", language="en").agency
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cpus, load average {load[0]:.2f} / {load[1]:.2f}; PostgreSQL "
          f"{connection.cursor().connection.info.server_version}; sizes {SIZES} trips; {RUNS} runs each")
    with tenant_context(agency):
        from accounts.models import User

        admin = User.objects.filter(role="admin").order_by("pk").first()
        others()
        for trips in SIZES:
            customer = customer_with(trips, admin)
            measure(customer, trips, admin)
    return 0


def others() -> None:
    from crm.customers.models import Customer
    from crm.trips.models import Trip

    have = Customer.objects.filter(external_ref__startswith="bench-other-").count()
    if have >= OTHERS:
        return
    people = Customer.objects.bulk_create([Customer(name=f"路人{i}", external_ref=f"bench-other-{i}")
                                           for i in range(have, OTHERS)])
    Trip.objects.bulk_create([Trip(customer=p, title="周末", destination="杭州", currency="CNY") for p in people])


def customer_with(trips: int, admin):
    """The bench customer with ``trips`` trips and everything around them (made once, then reused)."""
    from django.db import transaction

    from crm.customers import crypto
    from crm.customers.models import ChangeLog, Contact, Customer, Email, Phone, Preferences, TravelDocument
    from crm.pipeline.models import Opportunity, Stage, Task
    from crm.privacy.models import AccessEntry
    from crm.trips.models import ChecklistItem, ItineraryItem, Payment, Traveler, Trip

    ref = f"bench-export-{trips}"
    found = Customer.objects.filter(external_ref=ref).first()
    if found is not None:
        return found
    rng = random.Random(trips)
    with transaction.atomic():
        customer = Customer.objects.create(name=f"王芳{trips}", latin_surname="Wang", latin_given="Fang", external_ref=ref,
                                           notes="常客，喜欢靠过道的座位。" * 5)
        companion = Customer.objects.create(name=f"李雷{trips}", external_ref=f"{ref}-companion")
        Phone.objects.create(customer=customer, number=f"+86138{trips:08d}")
        Email.objects.create(customer=customer, address=f"wang{trips}@example.cn")
        Preferences.objects.create(customer=customer, seat="aisle", airlines=["CA", "MU"], interests=["food"])
        for n, number in enumerate((f"E{trips:08d}", f"G{trips:08d}")):
            TravelDocument.objects.create(customer=customer, kind="passport", issuing_country="CN",
                                          number_encrypted=crypto.encrypt(number),
                                          number_hash=crypto.lookup_hash(f"{n}{number}"),
                                          tail_hash=crypto.lookup_hash("tail:" + number[-4:]), masked=crypto.mask(number))
        stage = Stage.objects.filter(kind="won").first()
        opportunities = Opportunity.objects.bulk_create([
            Opportunity(customer=customer, title=f"行程 {i}", currency="CNY", stage=stage) for i in range(trips)])
        made = Trip.objects.bulk_create([
            Trip(customer=customer, opportunity=o, title=o.title, destination=rng.choice(["日本", "泰国", "法国"]),
                 currency="CNY", status="completed", depart_on=date(2020, 1, 1) + timedelta(days=i),
                 return_on=date(2020, 1, 8) + timedelta(days=i)) for i, o in enumerate(opportunities)])
        ItineraryItem.objects.bulk_create([
            ItineraryItem(trip=t, kind=kind, description=f"{kind} {t.title}", sell=Decimal("2000.00"), cost=Decimal("1800.00"))
            for t in made for kind in ("flight", "hotel", "transfer", "tour")])
        travelers = Traveler.objects.bulk_create([Traveler(trip=t, customer=c, is_lead=c == customer)
                                                  for t in made for c in (customer, companion)])
        ChecklistItem.objects.bulk_create([ChecklistItem(traveler=t, document="passport") for t in travelers
                                           if t.customer_id == customer.pk])
        Payment.objects.bulk_create([Payment(trip=t, kind=kind, amount=Decimal("4000.00"), currency="CNY")
                                     for t in made for kind in ("deposit", "balance")])
        Task.objects.bulk_create([Task(title=f"回访 {t.title}", due_at=t.created_at, customer=customer, trip=t)
                                  for t in made])
        Contact.objects.bulk_create([Contact(customer=customer, channel="call", summary="电话确认行程细节" * 3)
                                     for _ in range(10)])
        ChangeLog.objects.bulk_create([ChangeLog(customer=customer, actor=admin, via="page", field="notes", old="旧", new="新")
                                       for _ in range(2 * trips)])
        AccessEntry.objects.bulk_create([AccessEntry(customer=customer, user=admin, what="card_view", via="page",
                                                     address="127.0.0.1") for _ in range(2 * trips)])
    return customer


def measure(customer, trips: int, admin) -> None:
    import zipfile

    from crm.privacy import collect, export

    collector, build = [], []
    rows = data_json = zipped = peak = 0
    for run in range(RUNS):
        started = time.perf_counter()
        found = collect.customer_record_ids(customer)
        collector.append(time.perf_counter() - started)
        if run == 0:
            tracemalloc.start()
        started = time.perf_counter()
        _name, archive = export.build_archive(customer, actor=admin)
        build.append(time.perf_counter() - started)
        if run == 0:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        archive.seek(0, 2)
        zipped = archive.tell()
        archive.seek(0)
        with zipfile.ZipFile(archive) as z:
            data_json = z.getinfo("data.json").file_size
        rows = sum(len(ids) for ids in found.values())
    print(f"\n--- a customer with {trips:,} trips: {rows:,} rows in {len(found)} models; data.json {data_json / 1e6:.2f} MB, "
          f"ZIP {zipped / 1e6:.2f} MB ---")
    print(f"collector (ids only)  median {statistics.median(collector) * 1000:8.1f} ms "
          f"(range {min(collector) * 1000:.1f}–{max(collector) * 1000:.1f})")
    print(f"whole archive         median {statistics.median(build) * 1000:8.1f} ms "
          f"(range {min(build) * 1000:.1f}–{max(build) * 1000:.1f}); peak traced memory {peak / 1e6:.1f} MB "
          f"(first run, under tracemalloc)")


if __name__ == "__main__":
    sys.exit(main())
