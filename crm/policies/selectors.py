"""Reads for crm.policies: what pages, the API and jobs show."""


def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/policies/_card.html)."""
    return {}


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/policies/_dashboard.html)."""
    return {}
