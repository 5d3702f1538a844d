"""A segment definition: the JSON document of filters, and its one validator (R-CAMP-1).

A definition is a JSON object of filters, all of which must hold (AND); a filter that is missing,
``null``, an empty list or an empty object is off, and ``{}`` selects every customer. The keys and
value shapes are documented in docs/segments.md and are kept stable: campaigns store a copy. Each
filter is declared once in ``crm.segments.filters``; the value shapes are in ``values``.

``validate(definition)`` checks types, choices and ranges and returns the *cleaned* definition —
still plain JSON (dates as ``YYYY-MM-DD`` or relative offsets such as ``-12m``, amounts as decimal
strings, lists de-duplicated and sorted), so it can be stored and validated again unchanged. Errors
are a Django ``ValidationError`` keyed by filter name, which the builder page and the API show
next to the filter.
"""
from datetime import date

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .filters import FILTERS
from .values import Invalid, is_empty, resolve_date  # resolve_date: callers read dates from here too


def validate(definition, *, references: bool = True, today: date | None = None) -> dict:
    """The cleaned definition, or ``ValidationError({filter: [message]})``.

    ``references`` also checks that tier and colleague ids exist (on save and in the builder);
    evaluating a stored definition does not, so a deleted tier simply matches nobody."""
    if definition is None:
        return {}
    if not isinstance(definition, dict):
        raise ValidationError({"definition": [_("The filters are a JSON object, e.g. {\"city\": [\"上海\"]}.")]})
    if today is None:
        from crm.trips.services import agency_today

        today = agency_today()
    cleaned, errors = {}, {}
    for key, value in definition.items():
        if key not in FILTERS:
            errors[str(key)[:40]] = [_("Unknown filter.")]
            continue
        if is_empty(value):
            continue
        try:
            cleaned[key] = FILTERS[key].clean(value, references=references, today=today)
        except Invalid as exc:
            errors[key] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return {key: cleaned[key] for key in FILTERS if key in cleaned}
