"""Reads for crm.visits: what pages, the API and jobs show."""


def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/visits/_card.html)."""
    return {}


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/visits/_dashboard.html)."""
    return {}
