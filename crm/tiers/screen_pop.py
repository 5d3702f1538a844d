"""Tiers' part of the screen pop (``crm.customers.screen_pop``): the caller's service tier, as
the badge shows it (``frontend/tiers/_badge.html``)."""
from crm.customers.screen_pop import Part

from .models import CustomerTier, ServiceTier


def _sql() -> str:
    return f"""SELECT json_build_object('id', st.id, 'name', st.name, 'color', st.color)
           FROM {CustomerTier._meta.db_table} ct JOIN {ServiceTier._meta.db_table} st ON st.id = ct.tier_id
           WHERE ct.customer_id = c.id"""


def _tier(data: dict | None) -> ServiceTier | None:
    return ServiceTier(id=data["id"], name=data["name"], color=data["color"]) if data else None


def part() -> Part:
    return Part(key="tier", sql=_sql(), shape=_tier)
