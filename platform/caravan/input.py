"""Input no database can hold, refused with a clear 400 before any view runs (issue 18).

- A NUL byte (``\\x00``) in the path, a query parameter or a posted form field: PostgreSQL cannot
  store or compare it in text, so every search, filter and form that passed it on answered 500.
  :class:`RejectNulMiddleware` answers 400 naming the field: the API's error body on ``/api/``, a
  page otherwise. (JSON strings are refused by DRF's ``CharField`` already.)
- A JSON number outside what a float can hold (``1e999999`` reads as infinity) or ``NaN``:
  ``caravan.api.parsers.StrictJSONParser`` (the API's JSON parser) refuses the body as a parse error.
"""
from django.shortcuts import render
from django.utils.translation import gettext as _

NUL = "\x00"


def nul_field(request) -> str | None:
    """The name of the first field (or "path") carrying a NUL byte, else None."""
    if NUL in request.path:
        return "path"
    fields = list(request.GET.lists())
    if request.method in ("POST", "PUT", "PATCH") and request.content_type == "application/x-www-form-urlencoded":
        fields += list(request.POST.lists())
    for key, values in fields:
        if NUL in key or any(NUL in value for value in values):
            return key.replace(NUL, "")
    return None


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        field = nul_field(request)
        if field is None:
            return self.get_response(request)
        message = _("This field holds a character that cannot be stored (a NUL byte). Remove it and try again.")
        if request.path.startswith("/api/"):
            from caravan.api.errors import error_response  # not at import: DRF's settings import this module's neighbours

            return error_response("validation_error", _("Some fields need attention."), 400, {field: [message]})
        return render(request, "400.html", {"field": field, "message": message}, status=400)
