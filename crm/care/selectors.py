"""Reads for crm.care: what pages, the API and reports show."""


def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/care/_card.html)."""
    return {}


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/care/_dashboard.html)."""
    return {}
