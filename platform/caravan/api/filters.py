"""The API's search and ordering: offered only where a view honours them.

DRF's own ``SearchFilter`` and ``OrderingFilter`` advertise ``search`` and ``ordering`` on every
list in the OpenAPI schema, whether the view can search or order or not: a probe found ``search``
advertised on 37 lists and ignored by most (``/api/v1/customers/?search=zzzz`` answered every
customer). Here a list offers ``search`` only when its view says how to search:

- ``search_fields`` (DRF's lookups, e.g. ``["name", "=code"]``; Chinese text matches as any other), or
- ``search_queryset(queryset, term)``, a method that narrows the queryset with the same selector
  the page's search box uses (customers: name, phone in any format, e-mail, document tail),

and ``ordering`` only when it declares ``ordering_fields`` (never a guess from the serializer's
fields, which let a client order by a column that is not one and answered 500).
``tests/test_api_contract.py`` checks every list that advertises ``search`` honours it.
"""
from django.utils.translation import gettext_lazy as _
from rest_framework import filters


def can_search(view) -> bool:
    return bool(getattr(view, "search_fields", None)) or callable(getattr(view, "search_queryset", None))


class SearchFilter(filters.SearchFilter):
    search_description = _("Only the records matching this text (the same search as the page's).")

    def filter_queryset(self, request, queryset, view):
        hook = getattr(view, "search_queryset", None)
        if callable(hook):
            term = request.query_params.get(self.search_param, "").strip()
            return hook(queryset, term) if term else queryset
        return super().filter_queryset(request, queryset, view)

    def get_schema_operation_parameters(self, view):
        return super().get_schema_operation_parameters(view) if can_search(view) else []


class OrderingFilter(filters.OrderingFilter):
    def get_default_valid_fields(self, queryset, view, context=None):
        return []  # only what the view lists in ordering_fields

    def get_schema_operation_parameters(self, view):
        fields = getattr(view, "ordering_fields", None)
        if not fields or fields == "__all__":
            return []
        [parameter] = super().get_schema_operation_parameters(view)
        parameter["schema"] = {"type": "string", "enum": [p + f for f in fields for p in ("", "-")]}
        return [parameter]
