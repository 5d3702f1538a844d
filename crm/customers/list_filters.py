"""The customer list's filters that apps built on the core own (crm.value: ``segment``, ``quadrant``,
``rfm``).

The core's own filters (kind, owner, tag, tier, company, q) are plain code in
``selectors.customer_list``. An app registers a :class:`ListFilter` from its ``AppConfig.ready()``;
``customer_list``, the API (``CustomerFilterInput`` and the list's and export's query parameters in
OpenAPI) and the list page (frontend/views/customers.py) read the registry when they run, so the
core imports none of those apps.
"""
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import AppRegistryNotReady
from django.db.models import QuerySet


@dataclass(frozen=True)
class ListFilter:
    key: str  # the query parameter, on the page and in the API ("segment")
    help: str  # what it takes, for API readers (the field's help text, the parameter's description)
    apply: Callable[[QuerySet, Any], QuerySet]  # (customers, the value as given) -> narrowed; a bad value: none
    choices: tuple = ()  # the (value, label) pairs it takes, if a choice (the page's select, the API's enum)
    pattern: str = ""  # else the regular expression its value matches (the API refuses others)
    cap: str = ""  # the capability it needs: without it the page drops it and the API refuses it with
    refused: Any = ""  # this message (lazy text)


_filters: dict[str, ListFilter] = {}


def register(f: ListFilter) -> None:
    """Add a filter (from an ``AppConfig.ready()``; registering a key again replaces it)."""
    if f.cap and not f.refused:
        raise ValueError(f"customer list filter {f.key}: say why it is refused without {f.cap}")
    _filters[f.key] = f


def registered() -> tuple[ListFilter, ...]:
    """The registered filters, in the order they were registered. Read only once every app is ready:
    before that, some would be missing without anyone noticing."""
    if not apps.ready:
        raise AppRegistryNotReady("the customer list's filters are registered from AppConfig.ready()")
    return tuple(_filters.values())
