"""Reads for crm.pipeline: what pages, the API and reports show."""


def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/pipeline/_card.html)."""
    return {}


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/pipeline/_dashboard.html)."""
    return {}
