"""Segment reads (R-CAMP-1): the list, one segment, its members, a preview, the live count, and a
readable description of a definition for pages and exports."""
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from crm.customers.models import Customer
from crm.value.models import CustomerValue

from .definition import validate
from .filters import FILTERS
from .models import Segment
from .query import count_matching, customers_matching

PREVIEW_SIZE = 20


def segment_list() -> QuerySet:
    return Segment.objects.select_related("created_by").order_by("name", "pk")


def segment_access(pk) -> Segment:
    """The segment with this id in the active agency, else 404 (the same for missing and foreign)."""
    return get_object_or_404(Segment.objects.select_related("created_by"), pk=pk)


def segment_count(definition: dict) -> int:
    """The builder's live count: one ``SELECT count(*)``."""
    return count_matching(definition)


def members(definition: dict) -> QuerySet:
    """The matching customers, by name, for pages, the API and exports."""
    return customers_matching(definition).select_related("owner").order_by("name", "pk")


def preview(definition: dict, *, size: int = PREVIEW_SIZE) -> list[Customer]:
    return list(members(definition)[:size])


# --- a definition in words ------------------------------------------------------------------------

def describe(definition: dict) -> list[tuple[str, str]]:
    """``[(filter label, what it asks)]`` in the builder's order; ``[]`` for "every customer"."""
    from crm.trips.services import agency_today

    today = agency_today()
    clean = validate(definition, references=False, today=today)
    return [(str(FILTERS[key].label), FILTERS[key].words(value, today)) for key, value in clean.items()]


def value_choices() -> tuple[dict, dict]:
    """Labels of the value segments and quadrants, for the builder's check boxes."""
    return ({str(k): str(label) for k, label in CustomerValue.Segment.choices},
            {str(k): str(label) for k, label in CustomerValue.Quadrant.choices})


def filter_labels() -> dict:
    return {key: str(f.label) for key, f in FILTERS.items()}
