"""Demo trade history for customer value (seed_demo): three years of past trips so the RFM scores,
segments, lifetime-value fit, warnings and dashboard charts show something real.

Buyers follow a BG/NBD population (each with a trip rate and a drop-out probability, seeded), so
the lifetime model has a believable fit; trips carry cost and sell price, a third have a balance
due date with a payment (a tenth of those late), and a share of customers travelled at Chinese
festival breaks (the "last year at this holiday" suggestions and segments find them).
Idempotent: does nothing once the agency has history trips. Then runs ``value_run``."""
import random
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from crm.care.demo_journeys import DESTINATIONS, HOTELS
from crm.customers.festivals import FESTIVALS, festival_break
from crm.customers.models import Customer
from crm.trips.models import ItineraryItem, Payment, Trip

from . import services

TITLE_PREFIX = "[history] "
WEEKS = 156


def seed_value(agency, *, buyers: int = 600, rng_seed: int = 6) -> dict:
    if Trip.objects.filter(title__startswith=TITLE_PREFIX).exists():
        return {"trips": 0}
    rng = random.Random(rng_seed)
    people = list(Customer.objects.filter(kind=Customer.Kind.PERSON, merged_into__isnull=True)
                  .order_by("id").values_list("id", flat=True)[:buyers])
    companies = list(Customer.objects.filter(kind=Customer.Kind.COMPANY, merged_into__isnull=True)
                     .order_by("id").values_list("id", flat=True)[:20])
    now = timezone.now()
    trips, plans = [], []
    for customer_id in people + companies:
        corporate = customer_id in companies
        rate = rng.gammavariate(0.7 if corporate else 0.5, 1 / (4 if corporate else 14))  # trips per week
        drop = rng.betavariate(1, 6 if corporate else 3)
        week = rng.uniform(1, WEEKS)  # weeks ago of the first trip
        while week > 0:
            plans.append((customer_id, week, corporate))
            if rng.random() < drop:
                break
            week -= rng.expovariate(max(rate, 1e-3))
    festival_weeks = _festival_weeks(now)
    with transaction.atomic():
        for customer_id, week, corporate in plans:
            at = now - timedelta(weeks=week)
            if rng.random() < 0.15 and festival_weeks:  # some travel at a festival break instead
                start = rng.choice(festival_weeks)
                if start < now.date():
                    at = timezone.make_aware(datetime.combine(start - timedelta(days=30), time(10)))
            destination, _visa, nights, per_person = DESTINATIONS[rng.randrange(len(DESTINATIONS))]
            depart = (at + timedelta(days=30)).date()
            trips.append(Trip(
                customer_id=customer_id, title=f"{TITLE_PREFIX}{destination}", destination=destination,
                depart_on=depart, return_on=depart + timedelta(days=nights),
                status=Trip.Status.COMPLETED if depart + timedelta(days=nights) < now.date() else Trip.Status.CONFIRMED,
                currency=agency.currency, created_at=at - timedelta(days=3), confirmed_at=at,
                balance_due_on=(at + timedelta(days=14)).date() if rng.random() < 0.33 else None))
        made = Trip.objects.bulk_create(trips, batch_size=1000)
        items, payments = [], []
        for trip in made:
            travellers = rng.choice([1, 2, 2, 3, 4])
            sell = Decimal(int(DESTINATIONS[[d[0] for d in DESTINATIONS].index(trip.destination)][3] * travellers
                               * rng.uniform(0.8, 1.3)))
            margin = Decimal(rng.choice(["0.06", "0.09", "0.12", "0.15", "0.2"]))
            items.append(ItineraryItem(trip=trip, kind=ItineraryItem.Kind.TOUR, description=f"{trip.destination} · {rng.choice(HOTELS)}", sell=sell,
                                       cost=(sell * (1 - margin)).quantize(Decimal("1")),
                                       starts_on=trip.depart_on, ends_on=trip.return_on,
                                       details={"discounted": rng.random() < 0.25}))
            if trip.balance_due_on:
                late = rng.random() < 0.1
                paid_on = trip.balance_due_on + timedelta(days=rng.randint(20, 60) if late else -rng.randint(0, 5))
                if paid_on <= now.date():
                    payments.append(Payment(trip=trip, kind=Payment.Kind.BALANCE, amount=sell,
                                            currency=agency.currency, received_on=paid_on, reference="demo"))
        ItineraryItem.objects.bulk_create(items, batch_size=1000)
        Payment.objects.bulk_create(payments, batch_size=1000)
    result = services.value_run()
    return {"trips": len(made), "customers": result["customers"], "fitted": result["fitted"]}


def _festival_weeks(now) -> list:
    """First days of the festival breaks of the last three years."""
    starts = []
    for year in range(now.year - 3, now.year + 1):
        for key in FESTIVALS:
            found = festival_break(key, year)
            if found:
                starts.append(found[0])
    return starts
