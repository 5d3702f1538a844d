"""The OpenAPI schema says what the API answers (``DEFAULT_SCHEMA_CLASS``; issue 18).

- Every operation declares the answers any request may get, with the one error body
  (``caravan.api.errors.ErrorOutput``): 400 (validation, a parse error, a NUL byte), 401, 403, 404,
  429 (throttled), 415 (a body in a media type it does not read), and 414 (a request line too long
  for the web server; no body of ours).
  An operation's own ``@extend_schema(responses=…)`` for a code wins (e.g. 409 with the customers
  already on file).
- A time of day (``TimeField``) is a local ``HH:MM[:SS]`` string, not RFC 3339's ``format: time``
  (which needs a UTC offset the API never writes).
- A read-only field whose source passes a nullable column is ``nullable`` (``null_on_the_way``).
- ``search``, ``ordering`` and other filters are advertised on a viewset's ``list`` only, and only
  where the view honours them (``caravan.api.filters``).
- Only a ``list`` action, or an action declared ``@action(..., paginated=True)``, is documented as a
  page (``count``/``next``/``previous``/``results``): any other action that answers many records
  answers a bare array, and says so. ``AgencyViewSet.paginator`` follows the same rule at run time,
  so the two cannot disagree.

``tests/test_api_contract.py`` runs schemathesis over both schemas against this.
"""
from django.core.exceptions import FieldDoesNotExist
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from .writes import WRITES
from .errors import ErrorOutput

# DRF writes a time of day as the agency's wall-clock time ("10:00:00"), with no UTC offset, which
# OpenAPI's ``format: time`` (RFC 3339) requires: so a time is documented as what it is.
LOCAL_TIME = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
              "example": "10:00:00", "description": "A time of day in the agency's time zone (HH:MM[:SS])."}

ERRORS = {
    "400": "The request cannot be read, or some fields need attention (`fields`).",
    "401": "No valid token or session.",
    "403": "Signed in, but this role may not do this.",
    "404": "No such record here (or not on this host).",
    "429": "Too many requests; see Retry-After.",
}

UNSUPPORTED = "The body is not in a media type this operation reads."


def null_on_the_way(field) -> bool:
    """Whether a declared read-only field's ``source`` passes a column that may be NULL (``revoked_by``,
    ``segment.name``): then the field may answer null. DRF marks this only on the fields a
    ModelSerializer builds itself, not on those declared by hand."""
    model = getattr(getattr(getattr(field, "parent", None), "Meta", None), "model", None)
    if model is None or not field.read_only or field.source in (None, "*"):
        return False
    for name in field.source.split("."):
        try:
            column = model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        if getattr(column, "null", False):
            return True
        model = getattr(column, "related_model", None)
        if model is None:
            return False
    return False


def paginates(view) -> bool:
    """Whether ``view`` (a viewset instance for one action) answers a page rather than a bare array."""
    return getattr(view, "action", None) == "list" or bool(getattr(view, "paginated", False))


class AutoSchema(openapi.AutoSchema):
    def get_request_serializer(self):
        # A viewset built on caravan.api.writes declares what its writes read (an action's own
        # @extend_schema still wins: it overrides this method).
        if hasattr(self.view, "input_class") and getattr(self.view, "action", None) in WRITES:
            return self.view.input_class()
        return super().get_request_serializer()

    def get_filter_backends(self):
        # Filters (search, ordering, django-filter) act through filter_queryset, which a viewset's
        # list calls; its other actions (a customer's contacts, history) do not: advertise nothing there.
        if hasattr(self.view, "action") and self.view.action != "list":
            return []
        return super().get_filter_backends()

    def _get_paginator(self):
        if hasattr(self.view, "action") and not paginates(self.view):
            return None
        return super()._get_paginator()

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.TimeField) and schema.get("format") == "time":
            schema = {**{k: v for k, v in schema.items() if k != "format"}, **LOCAL_TIME}
        if direction == "response" and not schema.get("nullable") and null_on_the_way(field):
            schema = {"allOf": [schema], "nullable": True} if "$ref" in schema else {**schema, "nullable": True}
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, description in ERRORS.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(OpenApiResponse(ErrorOutput, description=description),
                                                              code, direction=direction)
        if self.method in ("POST", "PUT", "PATCH") and "415" not in responses:
            responses["415"] = self._get_response_for_code(OpenApiResponse(ErrorOutput, description=UNSUPPORTED),
                                                           "415", direction=direction)
        responses.setdefault("414", {"description": "Request line too long (answered by the web server)."})
        return responses
