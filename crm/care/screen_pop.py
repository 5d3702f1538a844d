"""Care's part of the screen pop (``crm.customers.screen_pop``): the caller's open complaints,
soonest deadline first."""
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from crm.customers.screen_pop import Part

from .models import Complaint


def _sql() -> str:
    return f"""SELECT json_agg(x) FROM (
              SELECT cp.id, cp.created_at, cp.deadline_at, cp.severity, cp.status, cp.description
              FROM {Complaint._meta.db_table} cp WHERE cp.customer_id = c.id AND cp.status IN ('open', 'in_progress')
              ORDER BY cp.deadline_at, cp.id LIMIT 5) x"""


def _complaint(data: dict) -> dict:
    severity = Complaint.Severity(data["severity"])
    return {"id": data["id"], "at": parse_datetime(data["created_at"]), "deadline_at": parse_datetime(data["deadline_at"]),
            "severity": severity.value, "severity_display": str(severity.label), "summary": data["description"],
            "url": reverse("complaint_detail", args=[data["id"]])}


def part() -> Part:
    return Part(key="open_complaints", sql=_sql(), shape=lambda rows: [_complaint(row) for row in rows or []])
