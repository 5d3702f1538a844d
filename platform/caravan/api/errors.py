"""One error body for the whole API.

    {"error": {"code": "validation_error", "message": "…", "fields": {"email": ["…"]}}}

``fields`` appears only for validation errors. Django ``ValidationError`` raised by a service
becomes the same 400 as a serializer error, so services need not know about DRF.
"""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback


class ErrorDetailOutput(serializers.Serializer):
    code = serializers.CharField(help_text="validation_error, parse_error, not_authenticated, permission_denied, "
                                           "not_found, conflict, throttled, …")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                   help_text="Validation errors only: messages per field.")


class ErrorOutput(serializers.Serializer):
    """The one error body (documented on every operation by ``caravan.api.schema.AutoSchema``)."""

    error = ErrorDetailOutput()


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    body = {"code": code, "message": str(message)}
    if fields:
        body["fields"] = fields
    return {"error": body}


def error_response(code: str, message: str, status: int, fields: dict | None = None) -> JsonResponse:
    """For middleware and plain Django views that must answer in the API's shape."""
    return JsonResponse(error_body(code, message, fields), status=status)


def not_found(request, exception=None):
    """``handler404`` of both URL maps: a path under ``/api/`` that no route matches (an id that is not
    a number, a mistyped path) answers the API's error body, not the HTML page."""
    if request.path.startswith("/api/"):
        return error_response("not_found", _("Not found."), 404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    """``handler400`` of both URL maps: a request Django refuses before any view (too many fields, a body
    over the upload limit) answers the API's error body under ``/api/``."""
    if request.path.startswith("/api/"):
        return error_response("bad_request", _("The request cannot be read."), 400)
    return defaults.bad_request(request, exception)


def _fields(detail) -> dict:
    if isinstance(detail, dict):
        return {key: [str(m) for m in (value if isinstance(value, list) else [value])] for key, value in detail.items()}
    return {"non_field_errors": [str(m) for m in (detail if isinstance(detail, list) else [detail])]}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError) and getattr(exc, "conflict", None):
        # A service refusing a write for the record's state, not the input, and naming what to use
        # instead (crm.customers.services.MergedAway: ``survivor``): 409 with those details.
        body = error_body("conflict", " ".join(exc.messages))
        body["error"].update(exc.conflict)
        set_rollback()
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("validation_error", _("Some fields need attention."), _fields(exc.detail))
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = error_body(code if isinstance(code, str) else "error", detail)
    return response


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


def conflict_response(message: str, existing: dict) -> Response:
    body = error_body("conflict", message)
    body["error"]["existing"] = existing
    return Response(body, status=status.HTTP_409_CONFLICT)
