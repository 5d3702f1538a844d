"""Reads for crm.trips: what pages, the API and reports show."""


def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/trips/_card.html)."""
    return {}


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/trips/_dashboard.html)."""
    return {}
