"""Trip summaries kept by PostgreSQL triggers (crm/trips/migrations/0002): every write path keeps
them right, they follow the trip's buyer and status, they go with the trip, and the triggers of one
agency's schema (cloned from the template) write to that agency's table only."""
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.models import ChangeLog
from crm.trips import services as trips
from crm.trips.models import ItineraryItem, Trip, TripSummary

pytestmark = pytest.mark.django_db


def a_trip(name="王芳") -> Trip:
    customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name)
    return trips.trip_create(actor=None, customer=customer, title="Trip", destination="日本 东京", status="confirmed")


def totals(trip) -> tuple | None:
    return TripSummary.objects.filter(trip=trip).values_list("sell", "cost", "items", "discounted_items").first()


def test_summary_follows_the_trip_row(alpha):
    with tenant_context(alpha):
        trip = a_trip()
        summary = TripSummary.objects.get(trip=trip)
        assert (summary.customer_id, summary.status, summary.items, summary.sell) == (trip.customer_id, "confirmed", 0, 0)
        other = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="李雷")
        Trip.objects.filter(pk=trip.pk).update(status="completed", customer=other, depart_on="2026-10-01")
        summary.refresh_from_db()
        assert (summary.customer_id, summary.status, str(summary.depart_on)) == (other.pk, "completed", "2026-10-01")


def test_totals_follow_every_write_path(alpha):
    with tenant_context(alpha):
        trip = a_trip()
        assert totals(trip) == (0, 0, 0, 0)  # no items yet
        first = trips.item_add(actor=None, trip=trip, kind="flight", description="CA929", sell=Decimal("5000"),
                               cost=Decimal("4200"), details={"discounted": "true"})
        assert totals(trip) == (Decimal("5000"), Decimal("4200"), 1, 1)
        ItineraryItem.objects.bulk_create([
            ItineraryItem(trip=trip, kind="hotel", description="Hilton", sell=Decimal("3000"), cost=Decimal("2500")),
            ItineraryItem(trip=trip, kind="tour", description="Fuji", sell=Decimal("800"), cost=Decimal("500"),
                          details={"discounted": "Yes"}),
        ])
        assert totals(trip) == (Decimal("8800"), Decimal("7200"), 3, 2)
        trips.item_update(actor=None, item=first, sell=Decimal("5500"), details={})
        assert totals(trip) == (Decimal("9300"), Decimal("7200"), 3, 1)
        ItineraryItem.objects.filter(trip=trip, kind="hotel").update(sell=Decimal("3100"))
        assert totals(trip)[0] == Decimal("9400")


def test_moving_and_removing_items_updates_both_trips(alpha):
    with tenant_context(alpha):
        one, other = a_trip("甲"), a_trip("乙")
        item = trips.item_add(actor=None, trip=one, kind="flight", description="MU5101", sell=Decimal("1200"),
                              cost=Decimal("1000"))
        trips.item_add(actor=None, trip=one, kind="hotel", description="Inn", sell=Decimal("600"), cost=Decimal("400"))
        ItineraryItem.objects.filter(pk=item.pk).update(trip=other)  # raw UPDATE: both trips recomputed
        assert totals(one) == (Decimal("600"), Decimal("400"), 1, 0)
        assert totals(other) == (Decimal("1200"), Decimal("1000"), 1, 0)
        trips.item_remove(actor=None, item=ItineraryItem.objects.get(pk=item.pk))
        assert totals(other) == (0, 0, 0, 0)
        with connection.cursor() as cursor:  # raw SQL, not the ORM
            cursor.execute("DELETE FROM trips_itineraryitem WHERE trip_id = %s", [one.pk])
        assert totals(one) == (0, 0, 0, 0)


def test_deleting_a_trip_with_items_leaves_no_summary(alpha):
    with tenant_context(alpha):
        trip = a_trip()
        trips.item_add(actor=None, trip=trip, kind="flight", description="CA929", sell=Decimal("10"), cost=Decimal("5"))
        trip_id = trip.pk
        Trip.objects.filter(pk=trip_id).delete()  # the ORM's cascade: items and summary, then the trip
        assert not TripSummary.objects.filter(trip_id=trip_id).exists()
        raw = a_trip("赵六")
        trips.item_add(actor=None, trip=raw, kind="flight", description="CA929", sell=Decimal("10"), cost=Decimal("5"))
        with connection.cursor() as cursor:  # raw SQL that never names the summary
            cursor.execute("DELETE FROM trips_itineraryitem WHERE trip_id = %s", [raw.pk])
            cursor.execute("DELETE FROM trips_traveler WHERE trip_id = %s", [raw.pk])
            cursor.execute("DELETE FROM trips_trip WHERE id = %s", [raw.pk])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred foreign keys are checked now
        assert not TripSummary.objects.filter(trip_id=raw.pk).exists()


def test_triggers_write_to_their_own_agency_only(alpha, bravo):
    with tenant_context(bravo):
        bravo_before = list(TripSummary.objects.values_list("trip_id", "sell"))
    with tenant_context(alpha):
        trip = a_trip()
        trips.item_add(actor=None, trip=trip, kind="flight", description="CA929", sell=Decimal("777"), cost=Decimal("1"))
        assert totals(trip)[0] == Decimal("777")
    with tenant_context(bravo):
        assert list(TripSummary.objects.values_list("trip_id", "sell")) == bravo_before
    # Even with the session's search_path on bravo, a write to alpha's table updates alpha's totals.
    with tenant_context(bravo):
        with connection.cursor() as cursor:
            cursor.execute(f'INSERT INTO "{alpha.schema_name}".trips_itineraryitem '
                           "(trip_id, kind, description, supplier, confirmation, cost, sell, details) "
                           "VALUES (%s, 'hotel', 'Inn', '', '', 1, 223, '{}')", [trip.pk])
        assert list(TripSummary.objects.values_list("trip_id", "sell")) == bravo_before
    with tenant_context(alpha):
        assert totals(trip) == (Decimal("1000"), Decimal("2"), 2, 0)
