"""Form helpers shared by the console and the agency pages."""
from collections.abc import Iterator
from contextlib import contextmanager

from django import forms
from django.core.exceptions import ValidationError


def apply_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (unknown keys become form errors)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@contextmanager
def errors_onto(form: forms.Form) -> Iterator[None]:
    """The one "form → service → errors on the form" step of a page's POST.

    A ValidationError raised in the block (by the service) ends it and goes onto ``form``
    (``form.apply_service_errors`` when the form routes errors itself, else :func:`apply_errors`);
    the code after the block then shows the form again::

        if form.is_valid():
            with errors_onto(form):
                thing = services.thing_create(actor=request.user, **form.cleaned_data)
                messages.success(request, _("Saved."))
                return redirect("thing_detail", pk=thing.pk)
        return render(request, "thing_form.html", {"form": form}, status=400)
    """
    try:
        yield
    except ValidationError as exc:
        route = getattr(form, "apply_service_errors", None)
        if route is not None:
            route(exc)
        else:
            apply_errors(form, exc)
