"""Trips' part of the screen pop (``crm.customers.screen_pop``): the last three trips the caller
booked or travelled on."""
from django.urls import reverse
from django.utils.dateparse import parse_date

from crm.customers.screen_pop import Part

from .models import Traveler, Trip


def _sql() -> str:
    trips, travelers = Trip._meta.db_table, Traveler._meta.db_table
    return f"""SELECT json_agg(x) FROM (
              SELECT t.id, t.title, t.destination, t.depart_on, t.return_on, t.status FROM {trips} t
              WHERE t.id IN (SELECT id FROM {trips} WHERE customer_id = c.id
                             UNION SELECT trip_id FROM {travelers} WHERE customer_id = c.id)
              ORDER BY t.depart_on DESC NULLS LAST, t.id DESC LIMIT 3) x"""


def _trip(data: dict) -> dict:
    status = Trip.Status(data["status"])
    return {"id": data["id"], "reference": f"T{data['id']:06d}", "title": data["title"],
            "destination": data["destination"], "depart_on": parse_date(data["depart_on"] or ""),
            "return_on": parse_date(data["return_on"] or ""), "status": status.value,
            "status_display": str(status.label), "url": reverse("trip_detail", args=[data["id"]])}


def part() -> Part:
    return Part(key="trips", sql=_sql(), shape=lambda rows: [_trip(row) for row in rows or []])
